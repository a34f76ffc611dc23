"""Which requests are the daemon's own: an HMAC over each request's bytes.

Anyone who can write the requests topic could otherwise make every replica hold a query
the daemon never asked (a forged request with ``expires_at`` in 9999 fills
``max_pending``; with a label after it, it teaches the model an invented class). Each
request the daemon produces carries ``HEADER`` = HMAC-SHA256(key, value); a request read
back without a valid one is a dead letter. The key is a deployment secret shared by the
replicas (and by desks and oracles that should trust the same requests).
"""

from __future__ import annotations

import hashlib
import hmac

from stream_al.bus import Message

HEADER = "stream-al-sig"


class RequestSigner:
    """Signs and checks request payloads with one key.

    >>> signer = RequestSigner(b"k" * 32)
    >>> message = Message("req", 0, 0, None, b"{}", headers=((HEADER, signer.sign(b"{}")),))
    >>> signer.verify(message), signer.verify(Message("req", 0, 1, None, b"{}"))
    (True, False)
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a request key needs at least 16 bytes")
        self._key = key

    def sign(self, value: bytes) -> bytes:
        return hmac.new(self._key, value, hashlib.sha256).hexdigest().encode("ascii")

    def verify(self, message: Message) -> bool:
        if message.value is None:
            return False
        given = dict(message.headers).get(HEADER)
        return given is not None and hmac.compare_digest(given, self.sign(message.value))
