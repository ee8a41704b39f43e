"""Reads for orders, scoped to the caller: their organisation, their client's orders when they
are limited to a client, or a driver's own orders; an organisation's order history for the
demand forecast; and a hub's multi-stop run as it would be planned now."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Prefetch, QuerySet

from dispatch.engine import sequencing
from dispatch.engine.forecast import PastOrder
from dispatch.models import DispatchSettings, Offer, OfferStatus, Order, OrderStatus, OrderTransition, Stop
from dispatch.services.round_inputs import epoch_s
from dispatch.services.routes import SERVICE_SECONDS
from dispatch.travel import travel_times
from fleet.models import Driver, DriverStatus, Hub, Vehicle


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


def dispatch_settings_of(organisation_id) -> DispatchSettings:
    """The organisation's dispatch settings as stored, or the defaults (unsaved) if it has none."""
    row = DispatchSettings.objects.filter(organisation_id=organisation_id).first()
    return row if row is not None else DispatchSettings(organisation_id=organisation_id)


@dataclass
class HubRun:
    hub: str
    at: datetime
    runs: list[tuple[str, list[tuple[str, datetime]]]]  # driver name -> (order ref, ETA) in order
    unassigned: list[str]  # order refs no vehicle can take in time and capacity
    back_at: dict  # driver name -> when they are back at the hub

    def lines(self) -> list[str]:
        out = [f"Run from {self.hub} at {self.at.isoformat(timespec='minutes')}"]
        for name, stops in self.runs:
            if stops:
                back = self.back_at[name].isoformat(timespec="minutes")
                out.append(f"  {name}: {len(stops)} drop-offs, back at {back}")
                out.extend(f"    {ref} at {eta.isoformat(timespec='minutes')}" for ref, eta in stops)
        out.extend(f"  left over: {ref} (no vehicle in time or capacity)" for ref in self.unassigned)
        return out


def hub_run(hub: Hub, *, now: datetime) -> HubRun:
    """Plan (without assigning) the hub's open orders picked up there as one multi-stop run of
    its ACTIVE, online drivers with an active vehicle: each leaves the hub loaded and comes back
    (engine.sequencing.plan_runs), every drop-off inside its window and the vehicles' capacity."""
    drivers = list(
        Driver.objects.filter(hub=hub, status=DriverStatus.ACTIVE, is_online=True).order_by("name", "id")
    )
    vehicles = {v.driver_id: v for v in Vehicle.objects.filter(driver__in=drivers, is_active=True)}
    depot = (hub.location.y, hub.location.x)
    fleet = [
        sequencing.Vehicle(
            d.id,
            *depot,
            start_s=epoch_s(now),
            capacity_kg=float(vehicles[d.id].capacity_kg),
            capacity_l=float(vehicles[d.id].capacity_litres),
            end=depot,
        )
        for d in drivers
        if d.id in vehicles
    ]
    orders = {o.id: o for o in Order.objects.filter(hub=hub, status=OrderStatus.CREATED).order_by("id")}
    tasks = [
        sequencing.Task(
            key=o.id,
            order_id=o.id,
            kind="dropoff",
            lat=o.dropoff_location.y,
            lon=o.dropoff_location.x,
            open_s=epoch_s(o.dropoff_window_start),
            close_s=epoch_s(o.dropoff_window_end),
            service_s=float(SERVICE_SECONDS[Stop.Kind.DROPOFF]),
            weight_kg=float(o.weight_kg),
            volume_l=float(o.volume_litres),
        )
        for o in orders.values()
        if o.dropoff_window_end > now
    ]
    if not fleet:
        return HubRun(hub.name, now, [], [orders[t.key].external_ref for t in tasks], {})
    plans = sequencing.plan_runs(fleet, tasks, travel_times(organisation_id=hub.organisation_id))
    names = {d.id: d.name for d in drivers}
    runs = [
        (
            names[plan.vehicle_id],
            [(orders[s.key].external_ref, datetime.fromtimestamp(s.begin_s, tz=UTC)) for s in plan.stops],
        )
        for plan in plans
    ]
    back = {names[p.vehicle_id]: datetime.fromtimestamp(p.end_s, tz=UTC) for p in plans}
    return HubRun(hub.name, now, runs, [orders[key].external_ref for key in plans[0].unassigned], back)


def order_history(organisation, *, since: datetime, until: datetime) -> list[PastOrder]:
    """The organisation's orders placed in [since, until) as the forecast reads them: where the
    pickup is and when the order came in (every order counts as demand, cancelled ones too)."""
    rows = Order.objects.filter(
        organisation=organisation, created_at__gte=since, created_at__lt=until
    ).values_list("pickup_location", "created_at")
    return [PastOrder(point.y, point.x, placed.timestamp()) for point, placed in rows]
