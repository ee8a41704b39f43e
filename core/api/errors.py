"""One JSON error shape for the whole API, with the offending fields named.

{"error": {"code": "invalid", "message": "...", "fields": {"pickup.lat": ["..."]}}}
"""

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import ConcurrentChange, InvalidTransition

# Errors about the request as a whole still name the part at fault.
REQUEST_PART_AT_FAULT = {
    exceptions.ParseError: "body",
    exceptions.UnsupportedMediaType: "Content-Type",
}


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """{"pickup": {"lat": ["bad"]}} -> {"pickup.lat": ["bad"]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):  # about the object itself: name the object
                path = prefix or "body"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, path))
        return flat
    if isinstance(detail, list):
        if detail and all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "body": [str(item) for item in detail]}
        flat = {}
        for index, item in enumerate(detail):
            flat.update(flatten_errors(item, f"{prefix}[{index}]"))
        return flat
    return {prefix or "body": [str(detail)]}


def error_response(code: str, message: str, http_status: int, fields=None, headers=None):
    body = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return Response(body, status=http_status, headers=headers)


# Signs that the database is busy, not broken: no pooled connection came free in time, a row
# lock was not granted within the lock timeout, or SQLite's write lock was held too long.
BUSY_SIGNS = ("couldn't get a connection", "lock timeout", "database is locked")
BUSY_RETRY_AFTER_SECONDS = 2


def is_busy(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError):
        return False
    text = f"{exc} {exc.__cause__ or ''}".lower()
    return any(sign in text for sign in BUSY_SIGNS) or type(exc.__cause__).__name__ in (
        "PoolTimeout",
        "LockNotAvailable",
    )


def exception_handler(exc, context):
    if is_busy(exc):
        return error_response(
            "busy",
            "The service is busy; retry shortly.",
            status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, RequestDataTooBig):
        return error_response(
            "body_too_large", "The request body is too large.", 413, {"body": ["Too large."]}
        )
    if isinstance(exc, InvalidTransition):
        return error_response(
            "invalid_transition",
            exc.message,
            status.HTTP_409_CONFLICT,
            {"status": [f"Is {exc.current_status}; '{exc.action}' is not allowed from it."]},
        )
    if isinstance(exc, ConcurrentChange):
        return error_response("concurrent_change", str(exc), status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        names = ", ".join(sorted(fields))
        return error_response(
            "invalid",
            f"Invalid input: {names}.",
            status.HTTP_400_BAD_REQUEST,
            fields,
            headers=response.headers,
        )
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    message = detail if isinstance(detail, str) else str(detail)
    fields = getattr(exc, "fields", None)
    if fields is None:
        part = next((name for kind, name in REQUEST_PART_AT_FAULT.items() if isinstance(exc, kind)), None)
        fields = {part: [str(message)]} if part else None
    return error_response(str(code), message, response.status_code, fields, response.headers)
