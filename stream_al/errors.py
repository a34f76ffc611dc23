"""One root exception; each subclass says whether retrying can help."""

from __future__ import annotations


class StreamAlError(Exception):
    """Root of every error stream-al raises on purpose."""

    #: True when the same call may succeed later (broker down, timeout).
    retriable: bool = False


class DecodeError(StreamAlError):
    """A payload could not be turned into a valid message.

    ``reason`` is a sentence a person can act on; it goes to the dead-letter topic.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigError(StreamAlError):
    """The configuration is invalid; the message names the field and the fix."""


class BrokerUnavailable(StreamAlError):
    """Kafka could not be reached; the caller backs off and tries again."""

    retriable = True


class StateError(StreamAlError):
    """A snapshot could not be restored (wrong format, another version, corrupt)."""
