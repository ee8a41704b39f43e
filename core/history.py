"""Change history for admin: who changed a row, when, and what it was before."""

from functools import partial

from simple_history.models import HistoricalRecords


def _history_user(instance=None, request=None, **kwargs):
    """The signed-in person behind a change; API-key and system changes have none here
    (the domain event log records those actors)."""
    from fleet.models import User

    user = getattr(request, "user", None)
    return user if isinstance(user, User) else None


History = partial(HistoricalRecords, get_user=_history_user)
