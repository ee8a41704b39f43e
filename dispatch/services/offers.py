"""Writes for offers: put work to one driver, who accepts, declines or lets it lapse.

An offer moves only through its transitions (PENDING -> ACCEPTED, DECLINED, EXPIRED or
WITHDRAWN), each in one transaction with a history row and an `offer.*` event. Rows are
locked in one order everywhere: the driver, then the orders (by id), then the offers (by id),
so two answers, a new offer and a suspension never wait on each other in a circle. Of two
drivers accepting offers for the same order at once, the first to lock the order wins; the
other finds their offer withdrawn and gets 409.
"""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from core.actors import Actor
from core.db import lock, save_transition
from core.events import record_event
from core.exceptions import InvalidTransition
from core.history import attribute_change
from dispatch import push
from dispatch.models import Offer, OfferStatus, Order, OrderStatus
from dispatch.services.orders import transition_order
from fleet.models import Driver, DriverStatus
from identity.models import Organisation

OFFERABLE_STATUSES = (OrderStatus.CREATED, OrderStatus.OFFERED)
DONE = {"accept": "accepted", "decline": "declined", "expire": "expired", "withdraw": "withdrawn"}


def offer_event_payload(offer: Offer, order_ids: list) -> dict:
    return {
        "offer_id": str(offer.id),
        "driver_id": str(offer.driver_id),
        "status": offer.status,
        "order_ids": sorted(str(order_id) for order_id in order_ids),
        "incentive_minor": offer.incentive_minor,
        "currency": offer.currency,
        "attempt": offer.attempt,
        "expires_at": offer.expires_at.isoformat(),
    }


def _locked_orders(organisation_id, order_ids) -> list[Order]:
    return list(lock(Order.objects).filter(organisation_id=organisation_id, id__in=order_ids).order_by("id"))


def _apply(offer: Offer, action: str, *, actor: Actor, reason: str, order_ids: list) -> Offer:
    """Move a locked offer by one transition, with its history row and its event."""
    from_status = offer.status
    try:
        getattr(offer, action)()
    except TransitionNotAllowed as exc:
        raise InvalidTransition(
            f"This offer is {from_status.lower()}; it can no longer be {DONE[action]}.",
            current_status=from_status,
            action=action,
        ) from exc
    offer.responded_at = timezone.now()
    offer.reason = reason[:500]
    attribute_change(offer, actor, f"{action}: {reason}" if reason else action)
    save_transition(offer, "offer")
    record_event(
        organisation=offer.organisation_id,
        event_type=f"offer.{offer.status.lower()}",
        subject_type="offer",
        subject_id=offer.id,
        actor=actor,
        reason=reason,
        payload={**offer_event_payload(offer, order_ids), "from_status": from_status},
    )
    return offer


def _release_if_unoffered(orders, *, organisation, actor: Actor, reason: str) -> None:
    """Orders still OFFERED to nobody go back to the pool (CREATED) for the next round."""
    for order in orders:
        order.refresh_from_db(fields=["status"])
        if order.status != OrderStatus.OFFERED:
            continue
        if Offer.objects.filter(orders=order, status=OfferStatus.PENDING).exists():
            continue  # still offered to someone else
        transition_order(
            order_id=order.id, organisation=organisation, action="release", actor=actor, reason=reason
        )


@transaction.atomic
def make_offer(
    *,
    organisation: Organisation,
    driver: Driver,
    orders: list[Order],
    expires_at: datetime,
    incentive_minor: int = 0,
    actor: Actor,
    attempt: int = 1,
    explanation: list[str] | None = None,
) -> Offer:
    """Offer orders (one or a batch) to an ACTIVE, online driver until `expires_at`.

    `explanation`: why dispatch chose this driver, in plain sentences (a round's cost terms).

    Orders still in the pool (CREATED) become OFFERED; an order may be offered to several
    drivers at once (the first to accept gets it), but to each driver once at a time.
    The driver hears of it on their socket once this commits.
    """
    if not orders:
        raise ValidationError({"orders": "Offer at least one order."})
    if incentive_minor < 0:
        raise ValidationError({"incentive_minor": "Must not be negative."})
    if expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Must be in the future."})
    locked_driver = lock(Driver.objects).filter(id=driver.id, organisation=organisation).first()
    if locked_driver is None:
        raise ValidationError({"driver_id": "No such driver in your organisation."})
    if locked_driver.status != DriverStatus.ACTIVE:
        raise ValidationError({"driver_id": f"The driver is {locked_driver.status}, not ACTIVE."})
    if not locked_driver.is_online:
        raise ValidationError({"driver_id": "The driver is offline."})
    order_ids = sorted({order.id for order in orders})
    locked = _locked_orders(organisation.id, order_ids)
    if len(locked) != len(order_ids):
        raise ValidationError({"orders": "No such order in your organisation."})
    for order in locked:
        if order.status not in OFFERABLE_STATUSES:
            raise ValidationError(
                {"orders": f"Order {order.external_ref} is {order.status}; it cannot be offered."}
            )
    already = Offer.objects.filter(driver=locked_driver, status=OfferStatus.PENDING, orders__in=locked)
    if already.exists():
        raise ValidationError({"orders": "The driver already has a pending offer for one of these orders."})
    currencies = {order.currency for order in locked}
    if len(currencies) != 1:
        raise ValidationError({"orders": "Orders in one offer share one currency."})
    for order in locked:
        if order.status == OrderStatus.CREATED:
            transition_order(order_id=order.id, organisation=organisation, action="offer", actor=actor)
    offer = Offer(
        organisation=organisation,
        driver=locked_driver,
        incentive_minor=incentive_minor,
        currency=currencies.pop(),
        attempt=attempt,
        expires_at=expires_at,
        explanation=[str(line)[:300] for line in (explanation or [])][:20],
    )
    attribute_change(offer, actor, "offered")
    offer.save()
    offer.orders.set(locked)
    record_event(
        organisation=organisation,
        event_type="offer.created",
        subject_type="offer",
        subject_id=offer.id,
        actor=actor,
        payload={**offer_event_payload(offer, order_ids), "explanation": offer.explanation},
    )
    transaction.on_commit(lambda: push.offer_to_driver(offer))
    return offer


def _open_offer(offer_id, driver: Driver, action: str) -> tuple[Offer, list[Order]]:
    """The driver's offer and its orders, locked (driver, orders, offer), and still open to
    an answer: PENDING and not past its expiry."""
    offer = Offer.objects.filter(id=offer_id, driver_id=driver.id).first()
    if offer is None:
        raise ValidationError({"offer_id": "No such offer for you."})
    lock(Driver.objects).get(id=driver.id)
    order_ids = list(offer.orders.values_list("id", flat=True))
    orders = _locked_orders(offer.organisation_id, order_ids)
    offer = lock(Offer.objects).get(id=offer.id)
    if offer.status != OfferStatus.PENDING:
        why = {
            OfferStatus.WITHDRAWN: "it was withdrawn (another driver took the work, or it was taken back)",
            OfferStatus.EXPIRED: "it expired",
            OfferStatus.ACCEPTED: "you already accepted it",
            OfferStatus.DECLINED: "you already declined it",
        }[offer.status]
        raise InvalidTransition(
            f"This offer cannot be {DONE[action]}: {why}.",
            current_status=offer.status,
            action=action,
        )
    refuse_if_past_expiry(offer, "offer", action)
    return offer, orders


def refuse_if_past_expiry(row, what: str, action: str) -> None:
    """A pending offer or suggestion past its expiry is answered no more, even before the expiry
    sweep marks it (409)."""
    if row.expires_at <= timezone.now():
        raise InvalidTransition(
            f"This {what} expired at {row.expires_at.isoformat()}; it can no longer be answered.",
            current_status="EXPIRED",
            action=action,
        )


@transaction.atomic
def accept_offer(*, offer_id, driver: Driver, actor: Actor) -> Offer:
    """The driver takes the offered work: its orders are assigned to them and every other
    pending offer for those orders is withdrawn (their other orders go back to the pool)."""
    offer, orders = _open_offer(offer_id, driver, "accept")
    organisation = Organisation.objects.get(id=offer.organisation_id)
    for order in orders:
        transition_order(
            order_id=order.id, organisation=organisation, action="assign", actor=actor, driver=driver
        )
    _apply(offer, "accept", actor=actor, reason="", order_ids=[order.id for order in orders])
    # Every answer to a rival offer locks these orders first, so the rivals cannot move now.
    rival_ids = set(
        Offer.objects.filter(orders__in=orders, status=OfferStatus.PENDING)
        .exclude(id=offer.id)
        .values_list("id", flat=True)
    )
    rivals = lock(Offer.objects).filter(id__in=rival_ids, status=OfferStatus.PENDING).order_by("id")
    freed = set()
    for rival in rivals:
        rival_order_ids = list(rival.orders.values_list("id", flat=True))
        _apply(
            rival,
            "withdraw",
            actor=Actor.system("offer-taken"),
            reason="Another driver accepted this work.",
            order_ids=rival_order_ids,
        )
        freed.update(set(rival_order_ids) - {order.id for order in orders})
    _release_if_unoffered(
        _locked_orders(organisation.id, sorted(freed)),
        organisation=organisation,
        actor=Actor.system("offer-taken"),
        reason="The offer it was in was withdrawn; the order is open again.",
    )
    return offer


@transaction.atomic
def decline_offer(*, offer_id, driver: Driver, actor: Actor, reason: str = "") -> Offer:
    """The driver turns the work down; orders offered to nobody else go back to the pool,
    and a later round leaves this driver out for them (selectors.drivers_excluded_for)."""
    offer, orders = _open_offer(offer_id, driver, "decline")
    _apply(offer, "decline", actor=actor, reason=reason.strip(), order_ids=[order.id for order in orders])
    _release_if_unoffered(
        orders,
        organisation=Organisation.objects.get(id=offer.organisation_id),
        actor=actor,
        reason="The driver declined the offer; the order is open again.",
    )
    return offer


def expire_due_offers(now: datetime | None = None) -> int:
    """Expire every pending offer past its expiry, each in its own transaction (one slow row
    holds up no other); orders offered to nobody else go back to the pool. Returns how many."""
    now = now or timezone.now()
    due = Offer.objects.filter(status=OfferStatus.PENDING, expires_at__lte=now).values_list(
        "id", "driver_id", "organisation_id"
    )
    expired = 0
    for offer_id, driver_id, organisation_id in list(due):
        with transaction.atomic():
            lock(Driver.objects).get(id=driver_id)
            order_ids = list(Order.objects.filter(offers__id=offer_id).values_list("id", flat=True))
            orders = _locked_orders(organisation_id, order_ids)
            offer = lock(Offer.objects).get(id=offer_id)
            if offer.status != OfferStatus.PENDING:
                continue  # answered meanwhile
            rule = Actor.system("offer-expiry")
            _apply(offer, "expire", actor=rule, reason="Not answered in time.", order_ids=order_ids)
            _release_if_unoffered(
                orders,
                organisation=Organisation.objects.get(id=organisation_id),
                actor=rule,
                reason="The offer expired unanswered; the order is open again.",
            )
            expired += 1
    return expired


def withdraw_offers_of_unavailable_driver(*, driver_id, organisation: Organisation, status_word: str) -> None:
    """A driver who stops being ACTIVE keeps no pending offer; orders offered to nobody else
    go back to the pool. Runs in the transaction that changed their status (driver locked)."""
    pending = Offer.objects.filter(driver_id=driver_id, status=OfferStatus.PENDING)
    order_ids = sorted(set(Order.objects.filter(offers__in=pending).values_list("id", flat=True)))
    orders = _locked_orders(organisation.id, order_ids)
    rule = Actor.system("driver-no-longer-active")
    for offer in lock(pending).order_by("id"):
        _apply(
            offer,
            "withdraw",
            actor=rule,
            reason=f"The driver can no longer take work ({status_word}).",
            order_ids=list(offer.orders.values_list("id", flat=True)),
        )
    _release_if_unoffered(
        orders,
        organisation=organisation,
        actor=rule,
        reason=f"The driver can no longer take work ({status_word}); the order is open again.",
    )


def withdraw_offers_holding(*, order_id, organisation: Organisation, actor: Actor, reason: str) -> None:
    """An order leaving the pool other than by an acceptance (cancelled, released, forced)
    keeps no pending offer: accepting one would only be a confusing 409. The offers' other
    orders go back to the pool if nobody else is offered them; this one is left to the caller's
    transition. Call before locking the order (locks: the orders by id, then the offers)."""
    pending = Offer.objects.filter(orders__id=order_id, status=OfferStatus.PENDING)
    offer_ids = sorted(set(pending.values_list("id", flat=True)))
    if not offer_ids:
        return
    order_ids = set(Order.objects.filter(offers__id__in=offer_ids).values_list("id", flat=True))
    orders = _locked_orders(organisation.id, sorted(order_ids | {order_id}))
    for offer in lock(Offer.objects).filter(id__in=offer_ids, status=OfferStatus.PENDING).order_by("id"):
        _apply(
            offer,
            "withdraw",
            actor=actor,
            reason=reason,
            order_ids=list(offer.orders.values_list("id", flat=True)),
        )
    _release_if_unoffered(
        [order for order in orders if order.id != order_id],
        organisation=organisation,
        actor=actor,
        reason="An offer it was in was withdrawn; the order is open again.",
    )
