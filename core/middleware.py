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
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > limit:
                body = {
                    "error": {
                        "code": "body_too_large" if length > limit else "invalid_content_length",
                        "message": f"The request body must be at most {limit} bytes.",
                        "fields": {"body": [f"At most {limit} bytes."]},
                    }
                }
                return HttpResponse(
                    json.dumps(body),
                    status=413 if length > limit else 400,
                    content_type="application/json",
                )
        return self.get_response(request)
