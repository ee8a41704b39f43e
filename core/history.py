"""Change history for admin: who changed a row, when, and what it was before."""

from functools import partial

from django.contrib.auth import get_user_model
from simple_history.models import HistoricalRecords


def _history_user(instance=None, request=None, **kwargs):
    """The signed-in person behind a change; API-key and system changes have none here
    (the domain event log records those actors)."""
    user = getattr(request, "user", None)
    return user if isinstance(user, get_user_model()) else None


# simple-history stores the change reason in a CharField of this length.
CHANGE_REASON_MAX = 100

History = partial(HistoricalRecords, get_user=_history_user)


def attribute_change(instance, actor, reason: str = "") -> None:
    """Make the history row of the next save of `instance` name the person behind `actor` and
    why (simple-history reads these): a service's change then shows who made it, in requests
    and outside them. An API key or a system rule has no user: the reason names it instead."""
    instance._history_user = actor.user
    by = "" if actor.user is not None else f"by {actor.type.label}: {actor.label}"
    text = "; ".join(part for part in (reason.strip(), by) if part)
    instance._change_reason = text[:CHANGE_REASON_MAX] or None
