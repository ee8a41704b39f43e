"""A driver's dispute of an earning, checked against telemetry (GPS pings, the order's
transitions, the routed distance): within tolerance it is corrected at once with an adjustment
entry (paid in the next cycle); otherwise it waits for a person. Every decision is stored with
its inputs and a reason in plain words, shown to the driver."""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.actors import Actor
from core.db import lock
from core.events import record_event
from dispatch.engine.geo import haversine_m
from dispatch.models import OrderStatus, OrderTransition
from fleet.models import Driver, LocationPing
from payouts import pricing
from payouts.models import AccountKind, Dispute, DisputeKind, DisputeStatus, Earning, TransactionKind
from payouts.services.ledger import driver_payable, org_account, post_transaction

# A GPS track and a claim agree when they differ by at most this much (the larger of the two).
DISTANCE_TOLERANCE_M = 250
DISTANCE_TOLERANCE_SHARE = 0.10
# Pings this close to the pickup count as being there (the drop-off geofence's default too).
PICKUP_GEOFENCE_M = 50


@dataclass
class Check:
    amount_minor: int  # > 0: corrected automatically by this much
    reason: str
    inputs: dict = field(default_factory=dict)


def _paid(earning: Earning, code: str) -> int:
    return sum(line["amount_minor"] for line in earning.breakdown.get("lines", []) if line["code"] == code)


def _moments(earning: Earning) -> dict:
    return dict(
        OrderTransition.objects.filter(order_id=earning.order_id).values_list("to_status", "occurred_at")
    )


def check_missing_tip(earning: Earning, claimed_distance_m=None) -> Check:
    due, paid = earning.order.tip_minor, _paid(earning, "tip")
    inputs = {"order_tip_minor": due, "paid_tip_minor": paid}
    c = earning.currency
    if due > paid:
        return Check(
            due - paid,
            f"The order carries a tip of {pricing.money(due, c)} and your earning paid "
            f"{pricing.money(paid, c)}: the missing {pricing.money(due - paid, c)} is added.",
            inputs,
        )
    return Check(0, f"The order's tip of {pricing.money(due, c)} was paid in full.", inputs)


def check_wrong_distance(earning: Earning, claimed_distance_m=None) -> Check:
    moments = _moments(earning)
    start, end = moments.get(OrderStatus.PICKED_UP), moments.get(OrderStatus.DELIVERED)
    pings = (
        list(
            LocationPing.objects.filter(
                driver_id=earning.driver_id, recorded_at__gte=start, recorded_at__lte=end
            )
            .order_by("recorded_at")
            .values_list("location", flat=True)
        )
        if start and end
        else []
    )
    tracked = pricing.path_length_m((p.y, p.x) for p in pings)
    inputs = {
        "paid_distance_m": earning.distance_m,
        "distance_source": earning.distance_source,
        "claimed_distance_m": claimed_distance_m,
        "gps_track_m": tracked,
        "gps_pings": len(pings),
    }
    if len(pings) < 2:
        return Check(0, "There is no GPS track of this delivery to check your distance against.", inputs)
    tolerance = max(DISTANCE_TOLERANCE_M, DISTANCE_TOLERANCE_SHARE * claimed_distance_m)
    if abs(tracked - claimed_distance_m) > tolerance:
        return Check(
            0,
            f"Your GPS track from pickup to drop-off is {tracked} m; you claim {claimed_distance_m} m, "
            f"more than {round(tolerance)} m apart.",
            inputs,
        )
    per_km = earning.rule.per_km_minor if earning.rule else 0
    extra_m = min(tracked, claimed_distance_m) - earning.distance_m
    amount = (per_km * extra_m + 500) // 1000 if extra_m > 0 else 0
    if amount <= 0:
        return Check(
            0,
            f"Your GPS track ({tracked} m) is not longer than the {earning.distance_m} m you were paid.",
            inputs,
        )
    return Check(
        amount,
        f"Your GPS track ({tracked} m) confirms your claim; you were paid for {earning.distance_m} m: "
        f"{extra_m} m more at {pricing.money(per_km, earning.currency)}/km is added.",
        inputs,
    )


def check_unpaid_waiting(earning: Earning, claimed_distance_m=None) -> Check:
    order = earning.order
    picked = _moments(earning).get(OrderStatus.PICKED_UP)
    facts = earning.breakdown.get("facts", {})
    paid_waiting_s = facts.get("waiting_s", 0)
    pings = (
        LocationPing.objects.filter(driver_id=earning.driver_id, recorded_at__lte=picked)
        .order_by("-recorded_at")
        .values_list("location", "recorded_at")[:500]
        if picked
        else []
    )
    first_there = None
    for location, at in pings:  # newest first: walk back while still at the pickup
        if (
            haversine_m(location.y, location.x, order.pickup_location.y, order.pickup_location.x)
            > PICKUP_GEOFENCE_M
        ):
            break
        first_there = at
    measured = (
        int((picked - max(first_there, order.pickup_window_start)).total_seconds()) if first_there else 0
    )
    rule = earning.rule
    threshold = rule.waiting_threshold_s if rule else 0
    inputs = {
        "paid_waiting_s": paid_waiting_s,
        "gps_waiting_s": max(0, measured),
        "threshold_s": threshold,
    }
    extra_s = max(0, measured - threshold) - max(0, paid_waiting_s - threshold)
    per_minute = rule.waiting_per_minute_minor if rule else 0
    amount = (per_minute * extra_s + 30) // 60 if extra_s > 0 else 0
    if amount <= 0:
        return Check(
            0,
            f"Your GPS pings show {max(0, measured) // 60} min at the pickup before pick-up; "
            f"you were paid for {paid_waiting_s // 60} min (paid past {threshold // 60} min).",
            inputs,
        )
    return Check(
        amount,
        f"Your GPS pings show you waited {measured // 60} min {measured % 60} s at the pickup; you were paid "
        f"for {paid_waiting_s // 60} min {paid_waiting_s % 60} s: {extra_s // 60} min {extra_s % 60} s more at "
        f"{pricing.money(per_minute, earning.currency)}/min is added.",
        inputs,
    )


CHECKS = {
    DisputeKind.MISSING_TIP: check_missing_tip,
    DisputeKind.WRONG_DISTANCE: check_wrong_distance,
    DisputeKind.UNPAID_WAITING: check_unpaid_waiting,
}


def _adjust(dispute: Dispute, amount_minor: int, description: str):
    earning = dispute.earning
    return post_transaction(
        organisation_id=dispute.organisation_id,
        kind=TransactionKind.ADJUSTMENT,
        key=f"dispute:{dispute.id}",
        currency=earning.currency,
        description=description,
        postings=[
            (org_account(dispute.organisation_id, AccountKind.PLATFORM, earning.currency), amount_minor),
            (driver_payable(dispute.driver, earning.currency), -amount_minor),
        ],
        order=earning.order,
        driver=dispute.driver,
    )


def _event(dispute: Dispute, event_type: str, actor: Actor, reason: str) -> None:
    record_event(
        organisation=dispute.organisation_id,
        event_type=event_type,
        subject_type="dispute",
        subject_id=dispute.id,
        actor=actor,
        reason=reason,
        payload={
            "dispute_id": str(dispute.id),
            "driver_id": str(dispute.driver_id),
            "earning_id": str(dispute.earning_id),
            "kind": dispute.kind,
            "status": dispute.status,
        },
    )


@transaction.atomic
def open_dispute(
    *,
    driver: Driver,
    earning_id,
    kind: str,
    message: str = "",
    claimed_distance_m: int | None = None,
    actor: Actor,
) -> Dispute:
    """Check the claim at once: corrected automatically, or queued for a person."""
    if kind not in DisputeKind.values:
        raise ValidationError({"kind": f"One of {', '.join(DisputeKind.values)}."})
    # No joins under FOR UPDATE: PostgreSQL refuses it on a nullable relation (the rule).
    earning = lock(Earning.objects.filter(id=earning_id, driver=driver)).first()
    if earning is None:
        raise ValidationError({"earning_id": "No such earning of yours."})
    if earning.reversed_at is not None:
        raise ValidationError({"earning_id": "This earning was reversed; there is nothing to dispute."})
    if kind == DisputeKind.WRONG_DISTANCE and not claimed_distance_m:
        raise ValidationError({"claimed_distance_m": "Say how far you drove, in metres."})
    if Dispute.objects.filter(earning=earning, kind=kind).exclude(status=DisputeStatus.REJECTED).exists():
        raise ValidationError({"kind": "You already disputed this earning for that."})
    check = CHECKS[kind](earning, claimed_distance_m)
    dispute = Dispute(
        organisation_id=earning.organisation_id,
        driver=driver,
        earning=earning,
        kind=kind,
        message=message,
        claimed_distance_m=claimed_distance_m,
        check_inputs=check.inputs,
        check_reason=check.reason,
        status=DisputeStatus.AUTO_CORRECTED if check.amount_minor > 0 else DisputeStatus.NEEDS_REVIEW,
        **actor.as_fields(),
    )
    if check.amount_minor <= 0:
        dispute.check_reason += " A person will review your claim."
    try:
        with transaction.atomic():
            dispute.save()
    except IntegrityError:
        raise ValidationError({"kind": "You already disputed this earning for that."}) from None
    if check.amount_minor > 0:
        dispute.adjustment = _adjust(
            dispute, check.amount_minor, f"Dispute ({dispute.get_kind_display()}): {check.reason}"
        )
        dispute.decided_at = timezone.now()
        dispute.save(update_fields=["adjustment", "decided_at"])
    _event(dispute, "dispute.opened", actor, dispute.check_reason)
    return dispute


@transaction.atomic
def decide_dispute(*, dispute_id, organisation_id, amount_minor: int, reason: str, actor: Actor) -> Dispute:
    """A person's decision on a queued dispute: an adjustment of `amount_minor` (0: rejected),
    with the reason the driver reads."""
    if type(amount_minor) is not int or amount_minor < 0:
        raise ValidationError({"amount_minor": "A whole number of minor units, 0 or more."})
    if not reason.strip():
        raise ValidationError({"reason": "Tell the driver why."})
    dispute = lock(Dispute.objects.filter(id=dispute_id, organisation_id=organisation_id)).first()
    if dispute is None:
        raise ValidationError({"dispute_id": "No such dispute in your organisation."})
    if dispute.status != DisputeStatus.NEEDS_REVIEW:
        raise ValidationError({"dispute_id": f"Already decided ({dispute.get_status_display()})."})
    dispute.decision_reason = reason.strip()
    dispute.decided_at = timezone.now()
    if amount_minor:
        dispute.status = DisputeStatus.CORRECTED
        dispute.adjustment = _adjust(
            dispute, amount_minor, f"Dispute ({dispute.get_kind_display()}): {reason.strip()}"
        )
    else:
        dispute.status = DisputeStatus.REJECTED
    dispute.save()
    _event(dispute, "dispute.decided", actor, dispute.decision_reason)
    return dispute
