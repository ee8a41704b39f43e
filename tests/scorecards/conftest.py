"""Orders carried through the real services, at a chosen time (time-machine), for scorecards."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.files.base import ContentFile

from core.actors import Actor
from core.geo import make_point
from dispatch.services.orders import create_order, deliver_order, transition_order
from tests.conftest import make_active_driver, order_payload
from tests.dispatch.factories import order_input
from tests.dispatch.test_order_lifecycle import png_bytes

SYSTEM = Actor.system("test-rule")
# order_payload's windows: pickup 12:00-12:30, drop-off 12:15-13:30 on this day.
DAY = datetime(2030, 1, 1, tzinfo=UTC)
PROMISED_BY = DAY.replace(hour=13, minute=30)
_refs = iter(range(10**9))


@pytest.fixture
def driver(org):
    return make_active_driver(org)


def new_order(org, *, ref=None, client=None, **overrides):
    payload = order_payload(ref or f"SC-{next(_refs)}", **overrides)
    if client is not None:
        payload["client_id"] = str(client.id)
    with time_machine.travel(DAY.replace(hour=11), tick=False):
        return create_order(organisation=org, actor=SYSTEM, data=order_input(payload))


def step(order, action, org, **kwargs):
    return transition_order(order_id=order.id, organisation=org, action=action, actor=SYSTEM, **kwargs)


def carry(order, org, driver, *, delivered_at: datetime | None = None, assigned_at=None, fail=False):
    """Assign, pick up and deliver (or fail) the order; delivered at `delivered_at`."""
    delivered_at = delivered_at or PROMISED_BY - timedelta(minutes=10)
    with time_machine.travel(assigned_at or DAY.replace(hour=11, minute=30), tick=False):
        step(order, "assign", org, driver=driver)
        step(order, "start_pickup", org)
    with time_machine.travel(DAY.replace(hour=12, minute=5), tick=False):
        step(order, "arrive_pickup", org)
        step(order, "pick_up", org)
    with time_machine.travel(delivered_at, tick=False):
        step(order, "arrive_dropoff", org)
        if fail:
            return step(order, "fail", org, reason="Nobody at home.")
        return deliver_order(
            order_id=order.id,
            organisation=org,
            driver=driver,
            actor=Actor.system("driver-app"),
            location=make_point(lat=60.1655, lon=24.938),
            captured_at=delivered_at,
            signature=ContentFile(png_bytes(), name="signature.png"),
            recipient_name="Maija",
        )
