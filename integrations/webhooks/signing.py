"""Webhook signatures (no Django import: receivers can copy this file).

Header `Fleetroot-Signature: t=<unix seconds>,v1=<hex>` where
v1 = hex HMAC-SHA256(key=secret, message=f"{t}." + raw body bytes). A receiver recomputes v1
over the raw body it got (before any JSON parsing), compares in constant time, and rejects a
timestamp further than its tolerance from now (replays). A header may carry several v1
values (one per secret while a secret is rotated): one match is enough.
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Fleetroot-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={_mac(secret, body, timestamp)}"


def parse(header: str | bytes | None) -> tuple[int | None, list[str]]:
    """(timestamp, v1 signatures) of a header; (None, []) when it is malformed.

    Never raises: a receiver feeds it whatever arrived.
    """
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    if not isinstance(header, str):
        return None, []
    timestamp, signatures = None, []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            return None, []
        if name == "t":
            # isdecimal() alone would admit non-ASCII digits that int() accepts.
            if timestamp is not None or not (value.isascii() and value.isdecimal()):
                return None, []
            timestamp = int(value)
        elif name == "v1" and value.isascii():
            signatures.append(value)
    return timestamp, signatures


def verify(
    secret: str,
    body: bytes,
    header: str | bytes | None,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True if one v1 in the header signs this body with this secret, recently enough."""
    timestamp, signatures = parse(header)
    if timestamp is None or not signatures:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = _mac(secret, body, timestamp).encode()
    # Compare every candidate (no early exit), as bytes: compare_digest refuses non-ASCII str.
    matches = [hmac.compare_digest(expected, given.encode()) for given in signatures]
    return any(matches)
