"""Login throttling policy for django-axes: lockouts that grow when they repeat."""

from datetime import timedelta

from axes.models import AccessFailureLog
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

MAX_LOCKOUT = timedelta(hours=24)


def client_ip(request) -> str | None:
    """The address a login is counted against (AXES_CLIENT_IP_CALLABLE).

    The connection's own address unless TRUSTED_PROXY_COUNT proxies stand in front: only then
    is X-Forwarded-For believed, and only the entry the outermost trusted proxy wrote (the
    N-th from the right); entries further left are whatever the client chose to send.
    """
    remote = request.META.get("REMOTE_ADDR")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    return forwarded[-count] if len(forwarded) >= count else remote


def lockout_cooloff(request) -> timedelta:
    """LOGIN_LOCKOUT_BASE for the first lockout of a username or address within a day, twice as
    long for each one after it, at most a day."""
    since = timezone.now() - timedelta(hours=24)
    username = (request.POST.get("username") or "") if request is not None else ""
    address = getattr(request, "axes_ip_address", None) or (client_ip(request) if request else None)
    failures = AccessFailureLog.objects.filter(
        Q(username=username) | Q(ip_address=address), attempt_time__gte=since
    ).count()
    lockouts = max(failures // settings.AXES_FAILURE_LIMIT, 1)
    doublings = min(lockouts - 1, 16)  # 2**16 minutes is past the cap already
    return min(settings.LOGIN_LOCKOUT_BASE * 2**doublings, MAX_LOCKOUT)
