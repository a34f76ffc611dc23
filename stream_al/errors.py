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


class Refused(StreamAlError):
    """A valid message the daemon will not take (a bound of ``Limits`` would be crossed,
    or it is not authentic). ``reason`` says which bound and how to change it."""

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


class StateDirError(StreamAlError):
    """The state directory cannot be written (disk full, read-only, permission): the
    last checkpoint stands and a later attempt may succeed once an operator fixes it."""

    retriable = True
