"""Row locks with a timeout, and inserting a large batch of rows quickly (insert_rows).

A service that locks rows waits at most DB_LOCK_TIMEOUT_MS for another transaction to let go
(PostgreSQL's lock_timeout, for this transaction only); past that the statement fails and the
API answers 503 with Retry-After (core.api.errors), instead of piling up waiting requests.
SQLite has one writer at a time and waits for it up to its busy timeout (settings).
"""

import json
import uuid
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.gis.db.models import GeometryField
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


def insert_rows(model: type[Model], rows: list[Model]) -> list[Model]:
    """`bulk_create(rows)` for a batch of thousands (a dispatch round's events and offers).

    On PostgreSQL the rows travel as one JSON document that the database unpacks
    (`jsonb_to_recordset`): Django's UNNEST bulk insert has psycopg quote every array element
    in Python, JSON payloads above all, several times slower. Models whose primary key is set in
    Python and whose columns are plain values (no geometry, JSON without a custom encoder) only;
    anything else, and other databases, go through bulk_create. No signals, as bulk_create."""
    fields = model._meta.concrete_fields
    plain = all(
        not isinstance(field, GeometryField) and getattr(field, "encoder", None) is None for field in fields
    )
    pk = model._meta.pk
    if connection.vendor != "postgresql" or not plain or not rows or not pk.has_default():
        return model.objects.bulk_create(rows)
    for row in rows:
        row._prepare_related_fields_for_save(operation_name="insert_rows")
    document = [{field.column: _json_value(field.pre_save(row, True)) for field in fields} for row in rows]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    types = ", ".join(f"{quote(field.column)} {field.db_type(connection)}" for field in fields)
    # Only the model's own table, column names and types are put in the text; the rows are bound.
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS r({types})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(document)])
    for row in rows:
        row._state.adding = False
        row._state.db = connection.alias
    return rows


def _json_value(value):
    """A column's value as JSON that PostgreSQL reads back into the column's type."""
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
