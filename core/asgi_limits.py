"""Request bodies capped before they are read, in front of Django (pure ASGI).

Django's ASGI handler reads the whole body into a spooled file before any middleware runs,
so a cap in Django middleware comes too late: a 400 MiB body is received in full and a
Content-Length of 10^12 is waited on forever. This layer sits between the server (uvicorn,
which streams bodies to the app with flow control) and Django:

- a Content-Length over the route's limit is answered 413 at once, without reading a byte;
- a malformed Content-Length is answered 400;
- a chunked body (no Content-Length) is counted as it streams and answered 413 as soon as it
  passes the limit; the rest is never read (the server then closes the connection).

Each route has its own limit: the JSON API is small, the upload routes larger (they stream
to disk past FILE_UPLOAD_MAX_MEMORY_SIZE), everything else the default.
"""

import json
import logging
from collections.abc import Awaitable, Callable, Iterable

logger = logging.getLogger(__name__)

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """The body streamed past the route's limit."""


def limit_for(path: str, limits: Iterable[tuple[str, int]], default: int) -> int:
    """The limit of the longest path prefix that matches, else the default."""
    best, best_length = default, -1
    for prefix, limit in limits:
        if path.startswith(prefix) and len(prefix) > best_length:
            best, best_length = limit, len(prefix)
    return best


async def _answer(send: Send, status: int, code: str, message: str, field: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "fields": {field: [message]}}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                # Answered before Django's middleware: the headers every other answer has.
                (b"x-content-type-options", b"nosniff"),
                (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Wraps the HTTP app; see the module docstring."""

    def __init__(self, app: ASGIApp, *, limits: Iterable[tuple[str, int]], default: int) -> None:
        self.app = app
        self.limits = list(limits)
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"], self.limits, self.default)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            text = declared.decode("latin-1").strip()
            if not text.isascii() or not text.isdigit():
                await _answer(
                    send,
                    400,
                    "invalid_content_length",
                    "Content-Length must be a whole number.",
                    "Content-Length",
                )
                return
            if int(text) > limit:
                logger.info("refused a %s-byte body for %s (limit %s)", text, scope["path"], limit)
                await _answer(
                    send, 413, "body_too_large", f"The request body must be at most {limit} bytes.", "body"
                )
                return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            logger.info("refused a streamed body over %s bytes for %s", limit, scope["path"])
            if not started:
                await _answer(
                    send, 413, "body_too_large", f"The request body must be at most {limit} bytes.", "body"
                )
