"""Row locks with a timeout, and inserting a large batch of rows quickly (insert_rows).

A service that locks rows waits at most DB_LOCK_TIMEOUT_MS for another transaction to let go
(PostgreSQL's lock_timeout, for this transaction only); past that the statement fails and the
API answers 503 with Retry-After (core.api.errors), instead of piling up waiting requests.
SQLite has one writer at a time and waits for it up to its busy timeout (settings).
"""

import json
from functools import partial

from django.conf import settings
from django.contrib.gis.db.models import GeometryField
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Field, ForeignObject, JSONField, Model, QuerySet
from django.db.models.lookups import In
from django_fsm import ConcurrentTransition
from psycopg.types.json import Jsonb

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


class AnyOf(In):
    """`field__any=ids`: `field__in=ids` for a list of hundreds or thousands (a dispatch
    round's orders and drivers). On PostgreSQL the list is one array parameter
    (`= ANY(%s)`): `IN (%s, %s, ...)` has Django compile and psycopg split and quote a
    placeholder per value, tens of milliseconds for a thousand. Elsewhere it is `IN`."""

    lookup_name = "any"

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        values = [field.get_db_prep_value(value, connection, prepared=True) for value in self.rhs]
        if not values:
            raise EmptyResultSet
        return f"{lhs} = ANY(%s)", (*lhs_params, values)


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # related fields keep lookups of their own: ids only


def save_transition(row: Model, what: str) -> None:
    """Save a row whose state machine just moved; if another transaction moved it first, the
    caller gets ConcurrentChange (409, retry) instead of overwriting that move."""
    try:
        row.save()
    except ConcurrentTransition as exc:
        raise ConcurrentChange(f"The {what} changed while this request ran; read it and retry.") from exc


def insert_rows(model: type[Model], rows: list[Model]) -> list[Model]:
    """`bulk_create(rows)` for a batch of thousands (a dispatch round's events, offers, their
    orders and the orders' transitions).

    On PostgreSQL the rows go in by one `COPY ... FROM STDIN`: psycopg writes each row in C and
    the database parses no statement or document for them (Django's UNNEST bulk insert has
    psycopg quote every array element in Python, JSON payloads above all, several times slower;
    one JSON document unpacked by `jsonb_to_recordset` took the database about twice as long as
    COPY). Each value is sent as the row holds it (JSON columns by json.dumps, with a value
    JSON has no type for as its text); only `auto_now` columns are filled in on the way. Models with
    plain columns only (no geometry, JSON without a custom encoder), whose related rows are
    saved already; a key the database makes (an auto id) is left to it and not read back.
    Anything else, and other databases, go through bulk_create. No signals, as bulk_create."""
    fields = model._meta.concrete_fields
    plain = all(
        not isinstance(field, GeometryField) and getattr(field, "encoder", None) is None for field in fields
    )
    pk = model._meta.pk
    database_key = not pk.has_default() and pk.db_returning
    if database_key and any(row.pk is not None for row in rows):
        database_key = False
    if connection.vendor != "postgresql" or not plain or not rows or not (pk.has_default() or database_key):
        return model.objects.bulk_create(rows)
    if database_key:
        fields = [field for field in fields if field is not pk]
    stamped = [
        field
        for field in fields
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    ]
    for field in stamped:
        for row in rows:
            field.pre_save(row, True)
    encode = partial(json.dumps, default=str)
    columns = [(field.attname, isinstance(field, JSONField)) for field in fields]
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in fields)
    # Only the model's own table and column names are put in the text; the rows are data.
    sql = f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            values = row.__dict__
            copy.write_row(
                [
                    Jsonb(values[attname], encode)
                    if is_json and values[attname] is not None
                    else values[attname]
                    for attname, is_json in columns
                ]
            )
    for row in rows:
        row._state.adding = False
        row._state.db = connection.alias
    return rows
