"""Reads for orders, scoped to the caller: their organisation, or a driver's own orders."""

from django.db.models import Prefetch, QuerySet

from dispatch.models import Order, OrderTransition


def orders_visible_to(user, *, with_history: bool = False) -> QuerySet[Order]:
    orders = Order.objects.filter(organisation_id=user.organisation_id)
    if getattr(user, "is_driver", False):
        orders = orders.filter(driver__user=user)
    if with_history:
        orders = orders.prefetch_related(
            Prefetch("transitions", queryset=OrderTransition.objects.order_by("occurred_at", "id"))
        )
    return orders
