"""Row locks with a timeout.

A service that locks rows waits at most DB_LOCK_TIMEOUT_MS for another transaction to let go
(PostgreSQL's lock_timeout, for this transaction only); past that the statement fails and the
API answers 503 with Retry-After (core.api.errors), instead of piling up waiting requests.
SQLite has one writer at a time and waits for it up to its busy timeout (settings).
"""

from django.conf import settings
from django.db import connection
from django.db.models import Model, QuerySet
from django_fsm import ConcurrentTransition

from core.exceptions import ConcurrentChange


def lock(queryset: QuerySet, *, skip_locked: bool = False) -> QuerySet:
    """`queryset.select_for_update()`, bounded by the lock timeout. Call inside a transaction.
    `skip_locked`: leave out rows another transaction holds instead of waiting for them."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)", [f"{settings.DB_LOCK_TIMEOUT_MS}ms"]
            )
    return queryset.select_for_update(skip_locked=skip_locked)


def save_transition(row: Model, what: str) -> None:
    """Save a row whose state machine just moved; if another transaction moved it first, the
    caller gets ConcurrentChange (409, retry) instead of overwriting that move."""
    try:
        row.save()
    except ConcurrentTransition as exc:
        raise ConcurrentChange(f"The {what} changed while this request ran; read it and retry.") from exc
