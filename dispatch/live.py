"""What the live map shows: drivers with their positions and state, the open orders, counts,
hubs and zone outlines, framed on the organisation's service area."""

import json

from django.contrib.gis.db.models import Extent
from django.db.models import Count
from django.utils import timezone

from core.geo import point_as_dict
from dispatch.models import DRIVER_HOLDS_STATUSES, TERMINAL_STATUSES, Order
from fleet.models import Driver, DriverStatus, Hub, Zone

MAX_ORDERS = 500


def live_snapshot(organisation_id) -> dict:
    drivers = list(
        Driver.objects.filter(organisation_id=organisation_id, status=DriverStatus.ACTIVE)
        .exclude(last_location=None)
        .prefetch_related("vehicles")
        .only("id", "name", "fleet_type", "is_online", "last_location", "last_seen_at", "status")
    )
    busy = set(
        Order.objects.filter(organisation_id=organisation_id, status__in=DRIVER_HOLDS_STATUSES).values_list(
            "driver_id", flat=True
        )
    )
    orders = (
        Order.objects.filter(organisation_id=organisation_id)
        .exclude(status__in=TERMINAL_STATUSES)
        .only("id", "external_ref", "status", "driver_id", "pickup_location", "dropoff_location")
        .order_by("-created_at")[:MAX_ORDERS]
    )
    order_counts = {
        row["status"]: row["n"]
        for row in Order.objects.filter(organisation_id=organisation_id)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
    }
    return {
        "at": timezone.now().isoformat(),
        "drivers": [
            {
                "id": str(driver.id),
                "name": driver.name,
                "fleet_type": driver.fleet_type,
                "online": driver.is_online,
                "busy": driver.id in busy,
                "vehicle": next((v.type for v in driver.vehicles.all() if v.is_active), None),
                "position": point_as_dict(driver.last_location),
                "seen_at": driver.last_seen_at.isoformat() if driver.last_seen_at else None,
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
        "order_counts": order_counts,
    }


def service_area_bbox(organisation_id) -> tuple[float, float, float, float] | None:
    """(min_lon, min_lat, max_lon, max_lat) of the organisation's zones, else of its hubs."""
    extent = Zone.objects.filter(organisation_id=organisation_id).aggregate(extent=Extent("area"))["extent"]
    if extent:
        return tuple(extent)
    points = [h.location for h in Hub.objects.filter(organisation_id=organisation_id).only("location")]
    if not points:
        return None
    xs, ys = [p.x for p in points], [p.y for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def map_features(organisation_id) -> dict:
    """What does not move on the map: hubs and zone outlines (GeoJSON geometries)."""
    return {
        "hubs": [
            {"name": hub.name, "address": hub.address, **point_as_dict(hub.location)}
            for hub in Hub.objects.filter(organisation_id=organisation_id, is_active=True)
        ],
        "zones": [
            {"name": zone.name, "geometry": json.loads(zone.area.geojson)}
            for zone in Zone.objects.filter(organisation_id=organisation_id)
        ],
    }
