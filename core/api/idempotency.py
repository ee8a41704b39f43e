"""Idempotency-Key on POST: a retried request is applied once and gets the first answer.

The key is private to its caller (API key or user). The first request stores an
IN_PROGRESS record in its own committed transaction, so a concurrent retry sees it and gets
409; the handler's writes and the stored response commit together. The same key with a
different body is refused with 422. Records expire after IDEMPOTENCY_KEY_TTL.

An IN_PROGRESS record holds a lease (IDEMPOTENCY_LEASE): a request that crashed before it
finished (the process died, so nothing deleted the record) blocks retries only until the
lease runs out; then a retry takes the key over and runs.
"""

import hashlib
import json
import re
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from core.models import IdempotencyRecord

KEY_PATTERN = re.compile(r"[A-Za-z0-9._:\-]{1,255}")
HEADER = "Idempotency-Key"


class IdempotencyError(exceptions.APIException):
    def __init__(self, status_code: int, code: str, message: str) -> None:
        self.status_code = status_code
        super().__init__(detail=message, code=code)
        self.fields = {HEADER: [message]}


class _Replay(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _fingerprint(request) -> str:
    raw = request._request.body or b""
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):  # not JSON we read: the bytes as sent
        canonical = raw
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), canonical):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def _api_key(request):
    """The API key the request authenticated with (identity's principal carries it), or None."""
    return getattr(request.user, "api_key", None)


def _caller(request) -> str:
    api_key = _api_key(request)
    if api_key is not None:
        return f"key:{api_key.pk}"
    return f"user:{request.user.pk}"


def _claim(request, key: str) -> IdempotencyRecord:
    """Insert the IN_PROGRESS record, or replay / refuse on an existing one."""
    caller, fingerprint = _caller(request), _fingerprint(request)
    organisation_id = request.user.organisation_id
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    organisation_id=organisation_id,
                    caller=caller,
                    key=key,
                    request_fingerprint=fingerprint,
                    lease_expires_at=now + settings.IDEMPOTENCY_LEASE,
                )
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(caller=caller, key=key).first()
            if existing is None:
                continue  # deleted between our insert and read (a failed first try): retry
            expired = existing.created_at < now - settings.IDEMPOTENCY_KEY_TTL
            abandoned = (
                existing.state == IdempotencyRecord.State.IN_PROGRESS
                and existing.lease_expires_at is not None
                and existing.lease_expires_at < now
            )
            if expired or abandoned:
                # Conditional on what we read: of two retries taking over, one deletes it.
                IdempotencyRecord.objects.filter(
                    id=existing.id, state=existing.state, lease_expires_at=existing.lease_expires_at
                ).delete()
                continue
            if existing.request_fingerprint != fingerprint:
                raise IdempotencyError(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with a different request body.",
                ) from None
            if existing.state == IdempotencyRecord.State.IN_PROGRESS:
                error = IdempotencyError(
                    409,
                    "idempotency_request_in_progress",
                    "A request with this Idempotency-Key is still being processed; retry later.",
                )
                # DRF sends an exception's `wait` as Retry-After.
                error.wait = max(1, int((existing.lease_expires_at - now).total_seconds()) + 1)
                raise error from None
            replay = Response(existing.response_body, status=existing.response_status)
            replay["Idempotent-Replayed"] = "true"
            raise _Replay(replay) from None
    raise IdempotencyError(409, "idempotency_conflict", "Could not claim the Idempotency-Key; retry.")


def _complete(record: IdempotencyRecord, response: Response) -> None:
    record.state = IdempotencyRecord.State.COMPLETED
    record.lease_expires_at = None
    record.response_status = response.status_code
    # Stored as the client got it (the API's renderer: decimals as numbers, aware times).
    rendered = JSONRenderer().render(response.data)
    record.response_body = json.loads(rendered) if rendered else None
    record.save(update_fields=["state", "lease_expires_at", "response_status", "response_body"])


class IdempotentPostMixin:
    """For DRF views: makes every POST idempotent. API-key callers must send the header."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method != "POST":
            return
        handler = getattr(self, request.method.lower(), None)
        if handler is None:
            return  # the route takes no POST: dispatch answers 405; claim nothing
        key = request.headers.get(HEADER)
        if key is None:
            if _api_key(request) is not None:
                raise IdempotencyError(
                    400,
                    "idempotency_key_missing",
                    "Send an Idempotency-Key header with every POST (e.g. a UUID).",
                )
            return
        if not KEY_PATTERN.fullmatch(key):
            raise IdempotencyError(
                400,
                "idempotency_key_malformed",
                "Idempotency-Key must be 1-255 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'.",
            )
        record = _claim(request, key)
        setattr(self, request.method.lower(), self._idempotent(handler, record))

    def _idempotent(self, handler, record: IdempotencyRecord):
        @wraps(handler)
        def run(request, *args, **kwargs):
            try:
                with transaction.atomic():
                    response = handler(request, *args, **kwargs)
                    if response.status_code < 500:
                        _complete(record, response)
                if response.status_code >= 500:
                    record.delete()
                return response
            except Exception as exc:  # an error answer is stored too, unless it is ours (5xx)
                try:
                    response = self.handle_exception(exc)
                except Exception:
                    record.delete()
                    raise
                if response.status_code < 500:
                    _complete(record, response)
                else:
                    record.delete()
                return response

        return run

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)
