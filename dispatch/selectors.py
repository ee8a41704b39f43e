"""Reads for orders, scoped to the caller: their organisation, their client's orders when they
are limited to a client, or a driver's own orders; and an organisation's order history for the
demand forecast."""

from datetime import datetime

from django.db.models import Prefetch, QuerySet

from dispatch.engine.forecast import PastOrder
from dispatch.models import Offer, OfferStatus, Order, OrderTransition


def orders_visible_to(user, *, with_history: bool = False) -> QuerySet[Order]:
    orders = Order.objects.filter(organisation_id=user.organisation_id)
    if getattr(user, "client_id", None) is not None:
        orders = orders.filter(client_id=user.client_id)
    if getattr(user, "is_driver", False):
        orders = orders.filter(driver__user=user)
    if with_history:
        orders = orders.prefetch_related(
            Prefetch("transitions", queryset=OrderTransition.objects.order_by("occurred_at", "id"))
        )
    return orders


def drivers_excluded_for(order) -> set:
    """Ids of the drivers who declined the order or let an offer of it lapse: a new round
    leaves them out for this order."""
    return set(
        Offer.objects.filter(
            orders=order, status__in=[OfferStatus.DECLINED, OfferStatus.EXPIRED]
        ).values_list("driver_id", flat=True)
    )


def order_history(organisation, *, since: datetime, until: datetime) -> list[PastOrder]:
    """The organisation's orders placed in [since, until) as the forecast reads them: where the
    pickup is and when the order came in (every order counts as demand, cancelled ones too)."""
    rows = Order.objects.filter(
        organisation=organisation, created_at__gte=since, created_at__lt=until
    ).values_list("pickup_location", "created_at")
    return [PastOrder(point.y, point.x, placed.timestamp()) for point, placed in rows]
