"""The SLA watch: predicted lateness from live ETAs, at-risk alerts with hysteresis (no
flapping), reassignment only when the organisation allows it (stored as a decision the driver
sees), and its place on the beat and the in-process scheduler."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import DomainEvent
from core.scheduler import beat_jobs
from dispatch.models import Order, OrderStatus, Route, Stop
from dispatch.services import sla
from dispatch.services.dispatch_settings import update_dispatch_settings
from fleet.models import DriverStatusChange
from identity.models import Role
from tests.conftest import make_user
from tests.dispatch.test_rounds import SYSTEM, driver_at, new_order
from tests.dispatch.test_routes import assign


@pytest.fixture
def thresholds(settings):
    settings.SLA_AT_RISK_RAISE_SECONDS = 300
    settings.SLA_AT_RISK_CLEAR_SECONDS = 120
    return settings


def dropoff_closes_in(order, minutes: float) -> None:
    """Move the order's drop-off promise (as if the customer's window were this tight)."""
    now = timezone.now()
    Stop.objects.filter(order=order, kind="dropoff").update(
        window_start=now - timedelta(hours=2), window_end=now + timedelta(minutes=minutes)
    )


def risk_events(order) -> list[str]:
    return list(
        DomainEvent.objects.filter(
            subject_id=str(order.id), event_type__in=["order.at_risk", "order.at_risk_cleared"]
        )
        .order_by("sequence")
        .values_list("event_type", flat=True)
    )


def test_an_alert_is_raised_past_x_and_cleared_only_under_y(org, thresholds):
    driver = driver_at(org, 1)
    order = new_order(org, "SLA-1", start=timezone.now())
    assign(org, order, driver)
    eta = Stop.objects.get(order=order, kind="dropoff").planned_arrival_at
    minutes_to_eta = (eta - timezone.now()).total_seconds() / 60

    dropoff_closes_in(order, minutes_to_eta - 10)  # 10 min late: past X (5 min)
    report = sla.watch_slas()
    assert report.raised == ["SLA-1"] and risk_events(order) == ["order.at_risk"]
    stop = Stop.objects.get(order=order, kind="dropoff")
    assert stop.at_risk_since is not None and stop.predicted_late_s > 500
    event = DomainEvent.objects.get(event_type="order.at_risk")
    assert event.payload["stop"] == "dropoff" and event.payload["predicted_late_s"] == stop.predicted_late_s

    sla.watch_slas()  # still late: no second alert
    dropoff_closes_in(order, minutes_to_eta - 3)  # 3 min late: under X but over Y, stays raised
    sla.watch_slas()
    assert risk_events(order) == ["order.at_risk"]

    dropoff_closes_in(order, minutes_to_eta - 1)  # 1 min late: under Y, cleared
    report = sla.watch_slas()
    assert report.cleared == ["SLA-1"]
    assert risk_events(order) == ["order.at_risk", "order.at_risk_cleared"]
    assert Stop.objects.get(order=order, kind="dropoff").at_risk_since is None
    sla.watch_slas()
    assert len(risk_events(order)) == 2


def test_without_the_policy_an_order_at_risk_stays_with_its_driver(org, thresholds):
    driver = driver_at(org, 1)
    order = new_order(org, "SLA-1", start=timezone.now())
    assign(org, order, driver)
    dropoff_closes_in(order, -30)
    report = sla.watch_slas()
    assert report.raised == ["SLA-1"] and report.reassigned == []
    order.refresh_from_db()
    assert (order.status, order.driver_id) == (OrderStatus.ASSIGNED, driver.id)


def test_with_the_policy_an_order_at_risk_goes_back_to_the_pool_and_the_driver_sees_why(org, thresholds):
    update_dispatch_settings(organisation=org, reassign_at_risk=True, actor=SYSTEM)
    user = make_user(org, Role.DRIVER, "courier")
    driver = driver_at(org, 1)
    driver.user = user
    driver.save()
    order = new_order(org, "SLA-1", start=timezone.now())
    assign(org, order, driver)
    dropoff_closes_in(order, -30)
    report = sla.watch_slas()
    assert report.reassigned == ["SLA-1"]
    order.refresh_from_db()
    assert (order.status, order.driver_id) == (OrderStatus.CREATED, None)
    assert not Stop.objects.filter(order=order, completed_at=None).exists()
    released = DomainEvent.objects.get(event_type="order.released", subject_id=str(order.id))
    assert "late" in released.reason and released.actor_type == "system"
    decision = DriverStatusChange.objects.get(driver=driver, from_status="ACTIVE", to_status="ACTIVE")
    assert decision.from_status == decision.to_status == "ACTIVE"
    assert "SLA-1" in decision.reason and "taken off your route" in decision.reason
    assert decision.inputs["policy"] == "reassign_at_risk" and decision.inputs["predicted_late_s"] > 1800
    # The driver reads it among their decisions.
    client = APIClient()
    client.force_login(user)
    shown = client.get(f"/api/v1/drivers/{driver.id}").json()["decisions"]
    assert shown[0]["reason"] == decision.reason and shown[0]["decided_by"] == "automated rule"


def test_the_policy_takes_back_only_work_not_yet_at_its_pickup(org, thresholds):
    update_dispatch_settings(organisation=org, reassign_at_risk=True, actor=SYSTEM)
    driver = driver_at(org, 1)
    order = new_order(org, "SLA-1", start=timezone.now())
    assign(org, order, driver)
    for action in ("start_pickup", "arrive_pickup", "pick_up"):
        from dispatch.services.orders import transition_order

        transition_order(order_id=order.id, organisation=org, action=action, actor=SYSTEM)
    dropoff_closes_in(order, -30)
    report = sla.watch_slas()
    assert report.raised == ["SLA-1"] and report.reassigned == []
    assert Order.objects.get(id=order.id).status == OrderStatus.PICKED_UP


def test_the_policy_setting_is_off_by_default_and_checked(org):
    row = update_dispatch_settings(organisation=org, actor=SYSTEM)
    assert row.reassign_at_risk is False
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        update_dispatch_settings(organisation=org, reassign_at_risk="yes", actor=SYSTEM)
    assert "reassign_at_risk" in error.value.message_dict


def test_the_watch_runs_on_the_beat_and_in_process(settings):
    entry = django_settings.CELERY_BEAT_SCHEDULE["watch-slas"]
    assert entry["task"] == "dispatch.watch_slas"
    settings.BACKGROUND_JOBS = "in-process"
    assert "watch-slas" in {job.name for job in beat_jobs()}


def test_a_completed_route_is_not_watched(org, thresholds):
    driver = driver_at(org, 1)
    order = new_order(org, "SLA-1", start=timezone.now())
    assign(org, order, driver)
    Route.objects.filter(driver=driver).update(status=Route.Status.COMPLETED)
    dropoff_closes_in(order, -30)
    assert sla.watch_slas().routes == 0
