"""Signed links for the recipient to rate a delivery (no login), in the order's API details
and its `order.delivered` webhook, as proof_links signs the proof images. The token names the
order only; the link opens until RATING_LINK_TTL_SECONDS after the delivery, and the rating
page (scorecards) takes one rating per order."""

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

from dispatch.models import Order, OrderStatus, OrderTransition

SALT = "fleetroot.rating-link"


def rating_token(order_id) -> str:
    return signing.Signer(salt=SALT).sign(str(order_id))


def order_id_from_token(token: str) -> str | None:
    """The order a token was signed for by us, or None (tampered, or not ours)."""
    try:
        return signing.Signer(salt=SALT).unsign(token)
    except signing.BadSignature:
        return None


def delivered_at(order: Order) -> datetime | None:
    return (
        OrderTransition.objects.filter(order=order, to_status=OrderStatus.DELIVERED)
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)
        .first()
    )


def link_expires_at(delivered: datetime) -> datetime:
    return delivered + timedelta(seconds=settings.RATING_LINK_TTL_SECONDS)


def rating_link_payload(order: Order, *, delivered: datetime | None = None) -> dict | None:
    """The link and until when it opens, for a delivered order (else None)."""
    if order.status != OrderStatus.DELIVERED:
        return None
    delivered = delivered or delivered_at(order)
    if delivered is None:
        return None
    path = reverse("rating-page", args=[rating_token(order.pk)])
    return {
        "url": f"{settings.PUBLIC_BASE_URL.rstrip('/')}{path}",
        "expires_at": link_expires_at(delivered).isoformat(),
    }
