"""Deliveries carried through the real services, one after another in time (scorecards
records their outcomes, discipline weighs them), and the organisation's rules set through the
rules service."""

from datetime import UTC, datetime, timedelta
from itertools import count

import time_machine
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.db import lock
from core.geo import make_point
from discipline import engine
from discipline.models import DisciplineDecision
from discipline.services import apply_verdict, current_rules, update_rules
from dispatch.services.orders import create_order, deliver_order, transition_order
from fleet.models import Driver
from tests.conftest import order_payload
from tests.dispatch.factories import order_input
from tests.dispatch.test_order_lifecycle import png_bytes

SYSTEM = Actor.system("test-dispatch")
START = datetime(2030, 1, 1, tzinfo=UTC)
STRICT_STREAK = {"metric": "consecutive_late", "threshold": 3, "action": "SUSPEND", "suspension_hours": 24}
_slots = count()


def set_rules(org, **rules):
    """Only these rules (by name) are in force."""
    return update_rules(organisation=org, rules=rules, actor=Actor.system("test-admin"))


def strict(org):
    """3 late deliveries in a row suspend for 24 hours, without a warning first."""
    return set_rules(org, late_streak=STRICT_STREAK)


def window(start: datetime, minutes: int) -> dict:
    return {"start": start.isoformat(), "end": (start + timedelta(minutes=minutes)).isoformat()}


def to_dropoff(org, driver, *, late_minutes: int = 0, assigned_late: bool = False):
    """One order in its own hour (after every earlier one), assigned, picked up and at the
    drop-off; returns it and when it is to be finished: `late_minutes` after its drop-off
    window closed (0: 20 minutes early). `assigned_late`: assigned so late nobody could be on
    time (LATE_PICKUP_WINDOW, excused)."""
    slot = START + timedelta(hours=next(_slots))
    promised = slot + timedelta(minutes=50)
    payload = order_payload(
        f"D-{slot:%m%d%H}",
        pickup={"address": "Pickup", "lat": 60.1690, "lon": 24.9410, "window": window(slot, 20)},
        dropoff={
            "address": "Drop-off",
            "lat": 60.1655,
            "lon": 24.9380,
            "window": window(slot + timedelta(minutes=10), 40),
        },
    )
    with time_machine.travel(slot - timedelta(minutes=30), tick=False):
        order = create_order(organisation=org, actor=SYSTEM, data=order_input(payload))
    assigned_at = promised - timedelta(seconds=20) if assigned_late else slot - timedelta(minutes=20)
    with time_machine.travel(assigned_at, tick=False):
        transition_order(order_id=order.id, organisation=org, action="assign", actor=SYSTEM, driver=driver)
        for step in ("start_pickup", "arrive_pickup", "pick_up"):
            transition_order(order_id=order.id, organisation=org, action=step, actor=SYSTEM)
    finished = (
        promised + timedelta(minutes=late_minutes) if late_minutes else promised - timedelta(minutes=20)
    )
    with time_machine.travel(finished, tick=False):
        transition_order(order_id=order.id, organisation=org, action="arrive_dropoff", actor=SYSTEM)
    return order, finished


def hand_over(org, driver, order, finished):
    """Deliver an order at the drop-off with a signed proof, at `finished`."""
    return deliver_order(
        order_id=order.id,
        organisation=org,
        driver=driver,
        actor=Actor.system("driver-app"),
        location=make_point(lat=60.1655, lon=24.938),
        captured_at=finished,
        signature=ContentFile(png_bytes(), name="signature.png"),
        recipient_name="Maija",
    )


def deliver(org, driver, *, late_minutes: int = 0, assigned_late: bool = False, fail: bool = False):
    """An order carried to its drop-off (to_dropoff) and delivered, or failed, there."""
    order, finished = to_dropoff(org, driver, late_minutes=late_minutes, assigned_late=assigned_late)
    with time_machine.travel(finished, tick=False):
        if fail:
            return transition_order(
                order_id=order.id, organisation=org, action="fail", actor=SYSTEM, reason="Nobody at home."
            )
        return hand_over(org, driver, order, finished)


def late(org, driver, minutes: int = 12):
    return deliver(org, driver, late_minutes=minutes)


def on_time(org, driver):
    return deliver(org, driver)


def excused_late(org, driver):
    return deliver(org, driver, late_minutes=5, assigned_late=True)


def decided(driver, rule_name: str, items) -> DisciplineDecision:
    """The decision the organisation's rule `rule_name` makes from these items (newest first),
    applied as evaluate_driver applies one: for fixtures that need a decision of each kind."""
    rule_set = current_rules(driver.organisation_id)
    rule = engine.parse_rules(rule_set.rules)[rule_name]
    finding = engine.evaluate(rule, items)
    assert finding is not None, "these items do not make the rule apply"
    with transaction.atomic():
        locked = lock(Driver.objects).get(id=driver.id)
        verdict = engine.verdict(finding, version=rule_set.version, warned_recently=False)
        return apply_verdict(driver=locked, rule_set=rule_set, verdict=verdict, now=timezone.now())


def warning_for(driver):
    """A warning of the default low_acceptance rule (20 offers declined)."""
    now = timezone.now()
    answers = [
        engine.OfferAnswer(
            id=f"{driver.id}-{n}", label=f"offer {n}", answer="DECLINED", at=now - timedelta(minutes=n)
        )
        for n in range(20)
    ]
    return decided(driver, "low_acceptance", answers)


def review_for(driver):
    """A human review asked for by the default low_rating rule (ten 2-star ratings)."""
    now = timezone.now()
    ratings = [
        engine.Rating(id=f"{driver.id}-{n}", label=f"R-{n}", stars=2, at=now - timedelta(minutes=n))
        for n in range(10)
    ]
    return decided(driver, "low_rating", ratings).reviews.get()
