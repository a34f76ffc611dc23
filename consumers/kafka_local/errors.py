"""Errors of the local broker; each message says what to do next."""

from __future__ import annotations

from stream_al.errors import StreamAlError


class KafkaLocalError(StreamAlError):
    """The local test broker could not be provided."""


class ToolMissing(KafkaLocalError):
    """Java 17+ or Maven is absent; the message names the packages to install."""


class DownloadError(KafkaLocalError):
    """Maven could not fetch the Kafka jars (network, proxy, unknown version)."""

    retriable = True


class BrokerStartError(KafkaLocalError):
    """The broker exited or never answered; the message carries the log tail."""


class BrokerExited(BrokerStartError):
    """The JVM quit while starting (e.g. a port taken meanwhile): worth a retry."""
