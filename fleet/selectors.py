"""Reads for the fleet, always scoped to the caller: an organisation, or a driver's own self."""

from django.db.models import Prefetch, QuerySet

from fleet.models import Driver, DriverStatusChange, Hub, Vehicle, Zone


def drivers_visible_to(user, *, with_decisions: bool = False) -> QuerySet[Driver]:
    drivers = Driver.objects.filter(organisation_id=user.organisation_id).prefetch_related(
        Prefetch("vehicles", queryset=Vehicle.objects.filter(is_active=True), to_attr="active_vehicles"),
        "preferred_zones",
    )
    if getattr(user, "is_driver", False):
        drivers = drivers.filter(user=user)
    if with_decisions:
        drivers = drivers.prefetch_related(
            Prefetch("status_changes", queryset=DriverStatusChange.objects.order_by("-occurred_at", "-id"))
        )
    return drivers


def hubs_visible_to(user) -> QuerySet[Hub]:
    return Hub.objects.filter(organisation_id=user.organisation_id)


def zones_visible_to(user) -> QuerySet[Zone]:
    return Zone.objects.filter(organisation_id=user.organisation_id)
