"""What the live map shows: drivers with their positions and state, the open orders (those at
risk of being late marked), pending offers, each driver's route through their remaining stops
with ETAs, counts, hubs and zone outlines, framed on the organisation's service area.

The snapshot holds it all; changes are pushed on commit as events (dispatch.push.to_live_map),
and the socket reads the changed route or offer with `driver_routes` / `pending_offers`."""

import json

from django.contrib.gis.db.models import Extent
from django.db.models import Count
from django.utils import timezone

from core.geo import point_as_dict
from dispatch.models import DRIVER_HOLDS_STATUSES, TERMINAL_STATUSES, Offer, OfferStatus, Order, Route, Stop
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
    at_risk = orders_at_risk(organisation_id)
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
                "at_risk": order.id in at_risk,
            }
            for order in orders
        ],
        "order_counts": order_counts,
        "offers": pending_offers(organisation_id),
        "routes": driver_routes(organisation_id),
    }


def orders_at_risk(organisation_id) -> set:
    """Ids of the organisation's orders with an open stop whose at-risk alert is raised."""
    return set(
        Stop.objects.filter(
            route__organisation_id=organisation_id,
            route__status=Route.Status.ACTIVE,
            completed_at=None,
            at_risk_since__isnull=False,
        ).values_list("order_id", flat=True)
    )


def pending_offers(organisation_id, *, offer_id=None) -> list[dict]:
    """Pending offers: the driver, the first pickup (the map draws a dashed line to it), the
    orders and when the offer expires."""
    offers = Offer.objects.filter(organisation_id=organisation_id, status=OfferStatus.PENDING)
    if offer_id is not None:
        offers = offers.filter(id=offer_id)
    out = []
    for offer in offers.prefetch_related("orders").order_by("expires_at")[:MAX_ORDERS]:
        orders = sorted(offer.orders.all(), key=lambda o: o.pickup_window_start)
        if not orders:
            continue
        out.append(
            {
                "id": str(offer.id),
                "driver_id": str(offer.driver_id),
                "refs": [o.external_ref for o in orders],
                "pickup": point_as_dict(orders[0].pickup_location),
                "expires_at": offer.expires_at.isoformat(),
            }
        )
    return out


def driver_routes(organisation_id, *, driver_id=None) -> list[dict]:
    """Each driver's remaining stops in order, with ETAs and predicted lateness (the map draws
    a line from the driver through them)."""
    stops = (
        Stop.objects.filter(
            route__organisation_id=organisation_id, route__status=Route.Status.ACTIVE, completed_at=None
        )
        .select_related("order", "route")
        .order_by("route__driver_id", "sequence")
    )
    if driver_id is not None:
        stops = stops.filter(route__driver_id=driver_id)
    routes: dict = {}
    for stop in stops:
        routes.setdefault(str(stop.route.driver_id), []).append(
            {
                "order_id": str(stop.order_id),
                "ref": stop.order.external_ref,
                "kind": stop.kind,
                **point_as_dict(stop.location),
                "eta": stop.planned_arrival_at.isoformat() if stop.planned_arrival_at else None,
                "window_end": stop.window_end.isoformat(),
                "predicted_late_s": stop.predicted_late_s,
                "at_risk": stop.at_risk_since is not None,
            }
        )
    if driver_id is not None and str(driver_id) not in routes:
        routes[str(driver_id)] = []
    return [{"driver_id": key, "stops": value} for key, value in routes.items()]


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
