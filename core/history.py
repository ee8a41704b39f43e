"""Change history for admin: who changed a row, when, and what it was before."""

from functools import partial

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from simple_history.models import HistoricalRecords


def _history_user(instance=None, request=None, **kwargs):
    """The signed-in person behind a change; API-key and system changes have none here
    (the domain event log records those actors)."""
    user = getattr(request, "user", None)
    return user if isinstance(user, get_user_model()) else None


# simple-history stores the change reason in a CharField of this length.
CHANGE_REASON_MAX = 100

History = partial(HistoricalRecords, get_user=_history_user)


def change_reason(actor, reason: str = "") -> str | None:
    """The history row's reason: why, and the API key or system rule when no person acted."""
    by = "" if actor.user is not None else f"by {actor.type.label}: {actor.label}"
    text = "; ".join(part for part in (reason.strip(), by) if part)
    return text[:CHANGE_REASON_MAX] or None


def attribute_change(instance, actor, reason: str = "") -> None:
    """Make the history row of the next save of `instance` name the person behind `actor` and
    why (simple-history reads these): a service's change then shows who made it, in requests
    and outside them. An API key or a system rule has no user: the reason names it instead."""
    instance._history_user = actor.user
    instance._change_reason = change_reason(actor, reason)


def copy_to_history(model, ids, *, actor, reason: str = "", history_type: str = "~") -> None:
    """The history rows of many saved rows at once, copied by the database in one
    INSERT ... SELECT (a dispatch round changes hundreds; simple-history's bulk_history_create
    would build and send every value from Python). `history_type`: "+" created, "~" changed.
    Columns are copied as stored (geometries too, on either backend)."""
    ids = list(ids)
    if not ids:
        return
    history = model.history.model
    quote = connection.ops.quote_name
    tracked = [field.name for field in history.tracked_fields]
    source = ", ".join(quote(model._meta.get_field(name).column) for name in tracked)
    target = ", ".join(
        quote(history._meta.get_field(name).column)
        for name in [*tracked, "history_date", "history_change_reason", "history_type", "history_user"]
    )
    pk = model._meta.pk
    constants = [
        connection.ops.adapt_datetimefield_value(timezone.now()),
        change_reason(actor, reason),
        history_type,
        actor.user.pk if actor.user else None,
    ]
    keys = [pk.get_db_prep_value(value, connection) for value in ids]
    # Only the models' own table and column names are put in the text; every value is bound
    # (on PostgreSQL the keys as one array, as core.db.AnyOf).
    if connection.vendor == "postgresql":
        where, keys = f"{quote(pk.column)} = ANY(%s)", [keys]
    else:
        where = f"{quote(pk.column)} IN ({', '.join(['%s'] * len(keys))})"
    sql = f"INSERT INTO {quote(history._meta.db_table)} ({target}) SELECT {source}, %s, %s, %s, %s FROM {quote(model._meta.db_table)} WHERE {where}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*constants, *keys])
