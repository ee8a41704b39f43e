"""What the live map shows: drivers with their positions and the open orders."""

from django.utils import timezone

from core.geo import point_as_dict
from dispatch.models import TERMINAL_STATUSES, Order
from fleet.models import Driver, DriverStatus


def live_snapshot(organisation_id) -> dict:
    drivers = (
        Driver.objects.filter(organisation_id=organisation_id, status=DriverStatus.ACTIVE)
        .exclude(last_location=None)
        .prefetch_related("vehicles")
        .only("id", "name", "fleet_type", "is_online", "last_location", "last_seen_at", "status")
    )
    orders = (
        Order.objects.filter(organisation_id=organisation_id)
        .exclude(status__in=TERMINAL_STATUSES)
        .only("id", "external_ref", "status", "driver_id", "pickup_location", "dropoff_location")
        .order_by("-created_at")[:500]
    )
    return {
        "at": timezone.now().isoformat(),
        "drivers": [
            {
                "id": str(driver.id),
                "name": driver.name,
                "fleet_type": driver.fleet_type,
                "online": driver.is_online,
                "vehicle": next((v.type for v in driver.vehicles.all() if v.is_active), None),
                "position": point_as_dict(driver.last_location),
            }
            for driver in drivers
        ],
        "orders": [
            {
                "id": str(order.id),
                "ref": order.external_ref,
                "status": order.status,
                "driver_id": str(order.driver_id) if order.driver_id else None,
                "pickup": point_as_dict(order.pickup_location),
                "dropoff": point_as_dict(order.dropoff_location),
            }
            for order in orders
        ],
    }
