"""Change history for admin: who changed a row, when, and what it was before."""

from functools import partial

from django.contrib.auth import get_user_model
from simple_history.models import HistoricalRecords


def _history_user(instance=None, request=None, **kwargs):
    """The signed-in person behind a change; API-key and system changes have none here
    (the domain event log records those actors)."""
    user = getattr(request, "user", None)
    return user if isinstance(user, get_user_model()) else None


History = partial(HistoricalRecords, get_user=_history_user)


def attribute_change(instance, actor, reason: str = "") -> None:
    """Make the history row of the next save of `instance` name the person behind `actor` and
    why (simple-history reads these): a service's change then shows who made it, in requests
    and outside them. API keys and system rules have no user; the event log names them."""
    instance._history_user = actor.user
    instance._change_reason = reason or None
