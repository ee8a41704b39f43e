"""The SLA watch: predicted lateness for every open stop from live ETAs, at-risk alerts with
hysteresis, and (when the organisation allows it) taking at-risk work back for another driver.

Every SLA_WATCH_SECONDS (Celery beat, or the in-process scheduler) each active route is retimed
from its driver's last position (routes.refresh_route, which re-sequences a route whose ETAs
drifted: closing windows first). A stop predicted more than SLA_AT_RISK_RAISE_SECONDS past its
window raises `order.at_risk`; the alert is cleared (`order.at_risk_cleared`) only once the
prediction falls under SLA_AT_RISK_CLEAR_SECONDS, so a prediction hovering at the line does
not flap. Each route is its own transaction; a route another transaction holds is skipped
until the next pass.

With DispatchSettings.reassign_at_risk on, an order whose alert is raised before its pickup
goes back to the pool through the release transition (the next round offers it again), and
the driver it was taken from sees the decision, its inputs and the reason among their
decisions (fleet.services.record_driver_decision).
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from core.actors import Actor
from core.api.errors import is_busy
from core.db import lock
from core.events import record_event
from dispatch.models import DispatchSettings, Order, OrderStatus, Stop
from dispatch.services.orders import transition_order
from dispatch.services.routes import active_route_ids, lock_routes, refresh_route, stop_event_payload
from fleet.services import record_driver_decision
from identity.models import Organisation

logger = logging.getLogger(__name__)

SLA_ACTOR = Actor.system("sla-watch")
# Work taken back only before the driver reaches the pickup: once there, the parcel is theirs
# to take.
REASSIGNABLE = (OrderStatus.ASSIGNED, OrderStatus.EN_ROUTE_PICKUP)


@dataclass
class WatchReport:
    routes: int = 0
    skipped: int = 0
    raised: list[str] = field(default_factory=list)  # order refs
    cleared: list[str] = field(default_factory=list)
    reassigned: list[str] = field(default_factory=list)


def watch_slas(*, now: datetime | None = None) -> WatchReport:
    """One pass over every active route (see the module's docstring)."""
    report = WatchReport()
    reassign = set(
        DispatchSettings.objects.filter(reassign_at_risk=True).values_list("organisation_id", flat=True)
    )
    for route_id in active_route_ids():
        try:
            raised = watch_route(route_id=route_id, now=now, report=report)
        except OperationalError as exc:
            if not is_busy(exc):
                raise
            report.skipped += 1
            continue
        report.routes += 1
        for stop in raised:
            if stop.route.organisation_id in reassign and stop.order.status in REASSIGNABLE:
                try:
                    if reassign_at_risk(stop_id=stop.id):
                        report.reassigned.append(stop.order.external_ref)
                except OperationalError as exc:
                    if not is_busy(exc):
                        raise
    return report


@transaction.atomic
def watch_route(*, route_id, now: datetime | None = None, report: WatchReport | None = None) -> list[Stop]:
    """Retime one route and raise or clear its stops' alerts; returns the stops just raised."""
    now = now or timezone.now()
    route = refresh_route(route_id=route_id, actor=SLA_ACTOR, now=now)
    if route is None:
        return []
    report = report or WatchReport()
    raised = []
    stops = Stop.objects.filter(route=route, completed_at=None).select_related("order", "route")
    for stop in stops:
        late = stop.predicted_late_s
        if stop.at_risk_since is None and late > settings.SLA_AT_RISK_RAISE_SECONDS:
            stop.at_risk_since = now
            _alert(stop, "order.at_risk", _risk_reason(stop))
            raised.append(stop)
            report.raised.append(stop.order.external_ref)
        elif stop.at_risk_since is not None and late < settings.SLA_AT_RISK_CLEAR_SECONDS:
            stop.at_risk_since = None
            _alert(stop, "order.at_risk_cleared", f"The {stop.get_kind_display().lower()} is back on time.")
            report.cleared.append(stop.order.external_ref)
        else:
            continue
        stop.save(update_fields=["at_risk_since"])
    return raised


def _risk_reason(stop: Stop) -> str:
    return (
        f"The {stop.get_kind_display().lower()} is predicted {stop.predicted_late_s // 60} min "
        f"after its window closes ({stop.window_end.isoformat(timespec='minutes')})."
    )


def _alert(stop: Stop, event_type: str, reason: str) -> None:
    record_event(
        organisation=stop.order.organisation_id,
        client_id=stop.order.client_id,
        event_type=event_type,
        subject_type="order",
        subject_id=stop.order_id,
        actor=SLA_ACTOR,
        reason=reason,
        payload={**stop_event_payload(stop), "at_risk": event_type == "order.at_risk"},
    )


@transaction.atomic
def reassign_at_risk(*, stop_id) -> bool:
    """Take an at-risk order back from its driver for the next round, if it is still theirs,
    still at risk and not yet at its pickup; the driver sees the decision. False if not."""
    stop = Stop.objects.select_related("route").filter(id=stop_id).first()
    if stop is None:
        return False
    driver_id = stop.route.driver_id
    lock_routes(driver_ids=[driver_id])  # the driver first, as every change to a route
    order = lock(Order.objects).get(id=stop.order_id)
    stop.refresh_from_db()
    if order.driver_id != driver_id or order.status not in REASSIGNABLE or stop.at_risk_since is None:
        return False
    organisation = Organisation.objects.get(id=order.organisation_id)
    inputs = {
        "order": order.external_ref,
        "stop": stop.kind,
        "eta": stop.planned_arrival_at.isoformat() if stop.planned_arrival_at else None,
        "window_end": stop.window_end.isoformat(),
        "predicted_late_s": stop.predicted_late_s,
        "raise_threshold_s": settings.SLA_AT_RISK_RAISE_SECONDS,
        "policy": "reassign_at_risk",
    }
    minutes = stop.predicted_late_s // 60
    kind = stop.get_kind_display().lower()
    transition_order(
        order_id=order.id,
        organisation=organisation,
        action="release",
        actor=SLA_ACTOR,
        reason=f"Predicted {minutes} min late for its {kind} window; taken back for another driver "
        "(the organisation reassigns work at risk).",
    )
    record_driver_decision(
        driver_id=driver_id,
        organisation=organisation,
        actor=SLA_ACTOR,
        reason=f"Order {order.external_ref} was taken off your route: your route would reach its "
        f"{kind} about {minutes} min after its window closes "
        f"({stop.window_end.isoformat(timespec='minutes')}), and your organisation gives work at "
        "risk of being late to another driver. Your status does not change.",
        inputs=inputs,
    )
    return True
