"""Refuse oversized API bodies before anything reads them."""

import json

from django.conf import settings
from django.http import HttpResponse


class ApiBodySizeLimitMiddleware:
    """413 with a JSON error for an /api/ request whose body exceeds API_MAX_BODY_BYTES."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            limit = settings.API_MAX_BODY_BYTES
            if "CONTENT_LENGTH" not in request.META and request.META.get("HTTP_TRANSFER_ENCODING"):
                # A chunked body has no length to check up front, and nothing below bounds it.
                return _json_error(
                    411,
                    "length_required",
                    "Send a Content-Length header; chunked request bodies are not accepted.",
                    {"Content-Length": ["Required."]},
                )
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0:
                return _json_error(
                    400,
                    "invalid_content_length",
                    "Content-Length must be a whole number of bytes.",
                    {"Content-Length": ["Not a whole number of bytes."]},
                )
            if length > limit:
                return _json_error(
                    413,
                    "body_too_large",
                    f"The request body must be at most {limit} bytes.",
                    {"body": [f"At most {limit} bytes."]},
                )
        return self.get_response(request)


def _json_error(status: int, code: str, message: str, fields: dict) -> HttpResponse:
    body = {"error": {"code": code, "message": message, "fields": fields}}
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")
