"""The per-route body limit, checked again inside Django.

The server-side guard is core.asgi_limits (it refuses before reading). This middleware applies
the same limits (settings.REQUEST_BODY_LIMITS) to anything that reaches Django another way,
such as the test client, so the rule holds whatever carries the request.
"""

import json

from django.conf import settings
from django.http import HttpResponse

from core.asgi_limits import limit_for


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = limit_for(request.path, settings.REQUEST_BODY_LIMITS, settings.REQUEST_MAX_BODY_BYTES)
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isascii() or not declared.isdigit():
            return _json_error(
                400, "invalid_content_length", "Content-Length must be a whole number.", "Content-Length"
            )
        if int(declared) > limit:
            return _json_error(
                413, "body_too_large", f"The request body must be at most {limit} bytes.", "body"
            )
        return self.get_response(request)


def _json_error(status: int, code: str, message: str, field: str) -> HttpResponse:
    body = {"error": {"code": code, "message": message, "fields": {field: [message]}}}
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")
