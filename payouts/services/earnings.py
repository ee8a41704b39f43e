"""Earnings per delivery: posted when the order becomes DELIVERED (by its proof of delivery or
an override), reversed when an override takes it out of DELIVERED; the client's charge with it.

Called from payouts.receivers inside the transaction that delivered the order, so the earning
commits with the delivery or not at all. One live earning per order (a table constraint), so
a retried or concurrent proof of delivery posts nothing twice.
"""

from dataclasses import asdict, dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.actors import Actor
from core.db import lock
from core.events import record_event
from dispatch.engine.travel import DEFAULT_VEHICLE
from dispatch.models import (
    Offer,
    OfferStatus,
    Order,
    OrderStatus,
    OrderTransition,
    RepositionSuggestion,
    Stop,
    SuggestionStatus,
)
from dispatch.travel import travel_times
from fleet.models import Vehicle, Zone
from payouts import pricing
from payouts.models import AccountKind, EarningRule, PriceList, TransactionKind
from payouts.models import Earning as EarningRow
from payouts.services.ledger import (
    account_for,
    driver_payable,
    org_account,
    post_transaction,
    reverse_transaction,
)

DISTANCE_SOURCES = {
    "route": "along your planned route",
    "travel": "street distance from pickup to drop-off",
}


@dataclass(frozen=True)
class Distance:
    metres: int
    source: str  # a key of DISTANCE_SOURCES


def routed_distance(order: Order) -> Distance:
    """The order's distance by road: along its route's stops from its pickup to its drop-off
    when dispatch planned one, else from the travel provider pickup to drop-off. Never the
    straight line."""
    travel = travel_times(organisation_id=order.organisation_id)
    vehicle = (
        Vehicle.objects.filter(driver_id=order.driver_id, is_active=True)
        .values_list("type", flat=True)
        .first()
        or DEFAULT_VEHICLE
    )
    stops = list(Stop.objects.filter(order=order).select_related("route").order_by("route__created_at"))
    pickup = next((s for s in stops if s.kind == Stop.Kind.PICKUP), None)
    dropoff = next(
        (s for s in stops if s.kind == Stop.Kind.DROPOFF and pickup and s.route_id == pickup.route_id), None
    )
    if pickup and dropoff and dropoff.sequence > pickup.sequence:
        legs = list(
            Stop.objects.filter(
                route_id=pickup.route_id, sequence__gte=pickup.sequence, sequence__lte=dropoff.sequence
            ).order_by("sequence")
        )
        points = [(stop.location.y, stop.location.x) for stop in legs]
        legs_m = travel.matrix(points[:-1], points[1:], None, vehicle).metres.diagonal()
        return Distance(round(float(legs_m.sum())), "route")
    origin = (order.pickup_location.y, order.pickup_location.x)
    destination = (order.dropoff_location.y, order.dropoff_location.x)
    return Distance(
        round(float(travel.matrix([origin], [destination], None, vehicle).metres[0, 0])), "travel"
    )


def pickup_waiting_s(order: Order) -> int:
    """Seconds the driver waited at the pickup: from arriving (or the window opening, if they
    came early) until picking up, by the order's transitions."""
    moments = dict(
        OrderTransition.objects.filter(
            order=order, to_status__in=[OrderStatus.ARRIVED_PICKUP, OrderStatus.PICKED_UP]
        ).values_list("to_status", "occurred_at")
    )
    arrived, picked = moments.get(OrderStatus.ARRIVED_PICKUP), moments.get(OrderStatus.PICKED_UP)
    if not arrived or not picked:
        return 0
    return max(0, int((picked - max(arrived, order.pickup_window_start)).total_seconds()))


def _accepted_offer(order: Order) -> Offer | None:
    return (
        Offer.objects.filter(orders=order, driver_id=order.driver_id, status=OfferStatus.ACCEPTED)
        .order_by("-responded_at")
        .first()
    )


def _first_of(offer: Offer) -> str:
    return min(str(pk) for pk in offer.orders.values_list("id", flat=True))


def auction_incentive_minor(order: Order, offer: Offer | None) -> int:
    """The order's share of the incentive on the offer its driver accepted (a batch's incentive
    split evenly, the remainder to its first order)."""
    if offer is None or not offer.incentive_minor:
        return 0
    count = offer.orders.count()
    share, remainder = divmod(offer.incentive_minor, count)
    return share + (remainder if _first_of(offer) == str(order.id) else 0)


def repositioning_incentive_minor(order: Order, offer: Offer | None) -> int:
    """The incentives of the reposition suggestions the driver accepted before taking this
    work and after the work they took before it: a move is paid with the first order accepted
    after it (on that offer's first order), once."""
    if offer is None or offer.responded_at is None or _first_of(offer) != str(order.id):
        return 0
    moves = RepositionSuggestion.objects.filter(
        driver_id=order.driver_id,
        status=SuggestionStatus.ACCEPTED,
        currency=order.currency,
        responded_at__lte=offer.responded_at,
    )
    previous = (
        Offer.objects.filter(
            driver_id=order.driver_id, status=OfferStatus.ACCEPTED, responded_at__lt=offer.responded_at
        )
        .order_by("-responded_at")
        .values_list("responded_at", flat=True)
        .first()
    )
    if previous is not None:
        moves = moves.filter(responded_at__gt=previous)
    return sum(moves.values_list("incentive_minor", flat=True))


def _in_effect(rows, at: datetime):
    return rows.filter(effective_from__lte=at).filter(Q(effective_to__isnull=True) | Q(effective_to__gt=at))


def rule_for(
    *, organisation_id, zone_id, vehicle_type: str, currency: str, at: datetime
) -> EarningRule | None:
    """The most specific rule in effect: zone and vehicle, then zone, then vehicle, then any."""
    rules = _in_effect(EarningRule.objects.filter(organisation_id=organisation_id, currency=currency), at)
    candidates = [(zone_id, vehicle_type), (zone_id, ""), (None, vehicle_type), (None, "")]
    for zone, vehicle in dict.fromkeys(candidates):
        found = rules.filter(zone_id=zone, vehicle_type=vehicle).order_by("-effective_from").first()
        if found is not None:
            return found
    return None


def price_for(*, organisation_id, client_id, currency: str, at: datetime) -> PriceList | None:
    """The client's price list in effect (none for a client: the organisation's default)."""
    prices = _in_effect(PriceList.objects.filter(organisation_id=organisation_id, currency=currency), at)
    return (
        prices.filter(client_id=client_id).order_by("-effective_from").first()
        or prices.filter(client__isnull=True).order_by("-effective_from").first()
    )


def tariff_of(rule: EarningRule | None) -> pricing.Tariff:
    if rule is None:
        return pricing.Tariff()
    return pricing.Tariff(
        base_minor=rule.base_minor,
        per_km_minor=rule.per_km_minor,
        waiting_threshold_s=rule.waiting_threshold_s,
        waiting_per_minute_minor=rule.waiting_per_minute_minor,
        surge=tuple(pricing.parse_surge(rule.surge)),
    )


def earning_breakdown(
    order: Order, *, at: datetime
) -> tuple[pricing.Breakdown, EarningRule | None, Distance, pricing.DeliveryFacts]:
    """What the order earns its driver, delivered at `at`, with the rule, distance and facts used."""
    vehicle = Vehicle.objects.filter(driver_id=order.driver_id, is_active=True).first()
    zone = Zone.objects.filter(
        organisation_id=order.organisation_id, area__intersects=order.dropoff_location
    ).first()
    rule = rule_for(
        organisation_id=order.organisation_id,
        zone_id=zone.id if zone else None,
        vehicle_type=vehicle.type if vehicle else "",
        currency=order.currency,
        at=at,
    )
    distance = routed_distance(order)
    offer = _accepted_offer(order)
    local = at.astimezone(ZoneInfo(order.organisation.timezone or "UTC"))
    facts = pricing.DeliveryFacts(
        distance_m=distance.metres,
        distance_source=DISTANCE_SOURCES[distance.source],
        waiting_s=pickup_waiting_s(order),
        tip_minor=order.tip_minor,
        auction_minor=auction_incentive_minor(order, offer),
        repositioning_minor=repositioning_incentive_minor(order, offer),
        local_weekday=local.weekday(),
        local_minute_of_day=local.hour * 60 + local.minute,
    )
    breakdown = pricing.delivery_earning(tariff_of(rule), facts, currency=order.currency)
    if rule is None:
        note = pricing.Line(
            "note", 0, "No earnings rule covers this delivery: only tip and incentives are paid."
        )
        breakdown = pricing.Breakdown(breakdown.currency, (*breakdown.lines, note))
    return breakdown, rule, distance, facts


@transaction.atomic
def post_delivery_earning(*, order_id, actor: Actor, reason: str = "") -> EarningRow:
    """Post the driver's earning and the client's charge for a DELIVERED order, once."""
    order = lock(Order.objects.select_related("organisation")).get(id=order_id)
    live = EarningRow.objects.filter(order=order, reversed_at__isnull=True).first()
    if live is not None:
        return live
    if order.status != OrderStatus.DELIVERED or order.driver_id is None:
        raise ValueError(f"Order {order.id} is {order.status}; only a delivered order earns.")
    now = timezone.now()
    breakdown, rule, distance, facts = earning_breakdown(order, at=now)
    attempt = EarningRow.objects.filter(order=order).count() + 1
    why = f" ({reason})" if reason else ""
    earned = None
    if breakdown.total_minor:
        earned = post_transaction(
            organisation_id=order.organisation_id,
            kind=TransactionKind.EARNING,
            key=f"earning:{order.id}:{attempt}",
            currency=order.currency,
            description=f"Delivery {order.external_ref}{why}",
            postings=[
                (
                    org_account(order.organisation_id, AccountKind.PLATFORM, order.currency),
                    breakdown.total_minor,
                ),
                (driver_payable(order.driver, order.currency), -breakdown.total_minor),
            ],
            order=order,
            driver=order.driver,
        )
    charge, charged = _post_client_charge(order, distance=distance, at=now, attempt=attempt, why=why)
    try:
        with transaction.atomic():
            earning = EarningRow.objects.create(
                organisation_id=order.organisation_id,
                driver_id=order.driver_id,
                order=order,
                rule=rule,
                currency=order.currency,
                total_minor=breakdown.total_minor,
                breakdown={**breakdown.as_dict(), "facts": asdict(facts)},
                distance_m=distance.metres,
                distance_source=distance.source,
                transaction=earned,
                charge=charged,
                charge_breakdown=charge.as_dict(),
            )
    except IntegrityError:
        return EarningRow.objects.get(order=order, reversed_at__isnull=True)
    _earning_event(earning, "earning.posted", actor, reason)
    return earning


def _post_client_charge(order: Order, *, distance: Distance, at: datetime, attempt: int, why: str):
    price = price_for(
        organisation_id=order.organisation_id, client_id=order.client_id, currency=order.currency, at=at
    )
    charge = pricing.client_charge(
        base_minor=price.base_minor if price else 0,
        per_km_minor=price.per_km_minor if price else 0,
        distance_m=distance.metres,
        tip_minor=order.tip_minor,
        currency=order.currency,
    )
    if not charge.total_minor:
        return charge, None
    receivable = (
        account_for(
            organisation_id=order.organisation_id,
            kind=AccountKind.CLIENT_RECEIVABLE,
            currency=order.currency,
            client_id=order.client_id,
        )
        if order.client_id
        else org_account(order.organisation_id, AccountKind.ORG_RECEIVABLE, order.currency)
    )
    posted = post_transaction(
        organisation_id=order.organisation_id,
        kind=TransactionKind.CLIENT_CHARGE,
        key=f"charge:{order.id}:{attempt}",
        currency=order.currency,
        description=f"Delivery {order.external_ref}{why}",
        postings=[
            (receivable, charge.total_minor),
            (org_account(order.organisation_id, AccountKind.PLATFORM, order.currency), -charge.total_minor),
        ],
        order=order,
    )
    return charge, posted


@transaction.atomic
def reverse_delivery_earning(*, order_id, actor: Actor, reason: str) -> EarningRow | None:
    """An override took the order out of DELIVERED: reverse its earning and charge, with the
    override's reason. None when it had no live earning."""
    earning = lock(EarningRow.objects.filter(order_id=order_id, reversed_at__isnull=True)).first()
    if earning is None:
        return None
    text = f"Reversed: {reason}"
    reversal = None
    for posted, kind in (
        (earning.transaction, TransactionKind.EARNING_REVERSAL),
        (earning.charge, TransactionKind.CLIENT_CHARGE_REVERSAL),
    ):
        if posted is not None:
            done = reverse_transaction(posted, kind=kind, key=f"reversal:{posted.id}", description=text)
            reversal = reversal or done
    earning.reversal, earning.reversed_reason, earning.reversed_at = reversal, reason, timezone.now()
    earning.save(update_fields=["reversal", "reversed_reason", "reversed_at"])
    _earning_event(earning, "earning.reversed", actor, reason)
    return earning


def _earning_event(earning: EarningRow, event_type: str, actor: Actor, reason: str) -> None:
    record_event(
        organisation=earning.organisation_id,
        event_type=event_type,
        subject_type="earning",
        subject_id=earning.id,
        actor=actor,
        reason=reason,
        payload={
            "earning_id": str(earning.id),
            "order_id": str(earning.order_id),
            "driver_id": str(earning.driver_id),
            "total_minor": earning.total_minor,
            "currency": earning.currency,
            "reversed": earning.reversed_at is not None,
        },
    )
