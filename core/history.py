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
