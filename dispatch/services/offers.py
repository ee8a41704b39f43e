"""Writes for offers: put work to one driver, who accepts, declines or lets it lapse.

An offer moves only through its transitions (PENDING -> ACCEPTED, DECLINED, EXPIRED or
WITHDRAWN), each in one transaction with a history row and an `offer.*` event. Rows are
locked in one order everywhere: the driver, then the orders (by id), then the offers (by id),
so two answers, a new offer and a suspension never wait on each other in a circle. Of two
drivers accepting offers for the same order at once, the first to lock the order wins; the
other finds their offer withdrawn and gets 409.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from core.actors import Actor
from core.db import insert_rows, lock, save_transition
from core.events import NewEvent, record_event, record_events
from core.exceptions import InvalidTransition
from core.history import attribute_change, copy_to_history
from dispatch import push
from dispatch.models import DispatchSettings, Offer, OfferStatus, Order, OrderStatus
from dispatch.services.dispatch_settings import rules_for
from dispatch.services.orders import lock_offerable_orders, offer_orders, transition_order
from dispatch.services.round_inputs import DriverRow, OrderRow, why_driver_cannot_take
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


class _LockedDriver(NamedTuple):
    id: Any
    status: str
    is_online: bool


@dataclass
class OfferDraft:
    """One offer to make: the work (one order or a batch) for one driver, and why them. Only
    their ids are read (and the driver's name), so a round's plain rows do as well."""

    driver: Driver | DriverRow
    orders: list[Order] | list[OrderRow]
    explanation: list[str] = field(default_factory=list)
    incentive_minor: int = 0
    attempt: int = 1


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
    draft = OfferDraft(driver, orders, explanation or [], incentive_minor, attempt)
    (made,) = make_offers(organisation=organisation, drafts=[draft], expires_at=expires_at, actor=actor)
    if isinstance(made, ValidationError):
        raise made
    return made


@transaction.atomic
def make_offers(
    *,
    organisation: Organisation,
    drafts: list[OfferDraft],
    expires_at: datetime,
    actor: Actor,
    skip_locked: bool = False,
) -> list[Offer | ValidationError]:
    """Make many offers at once (a dispatch round's), under make_offer's rules, in a fixed
    number of statements: the drivers and orders are locked and checked together, the offers,
    their orders' transitions, history rows and events written in bulk, and the drivers told
    in one go after the commit. Returns, per draft, its offer or why it was not made.

    `skip_locked`: a driver or order another transaction holds (answering an offer, say) is
    skipped at once, not waited for; its drafts fail as busy and the next round tries again.
    """
    if expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Must be in the future."})
    busy = "is busy (another change holds it); the next round tries again"
    driver_ids = sorted({draft.driver.id for draft in drafts})
    # The drivers' checks need three columns: plain rows, not model instances (a round locks
    # hundreds).
    drivers = {
        row[0]: _LockedDriver(*row)
        for row in lock(
            Driver.objects.filter(id__any=driver_ids, organisation=organisation), skip_locked=skip_locked
        )
        .order_by("id")
        .values_list("id", "status", "is_online")
    }
    order_ids = sorted({order.id for draft in drafts for order in draft.orders})
    locked_orders = lock_offerable_orders(
        organisation=organisation, order_ids=order_ids, skip_locked=skip_locked
    )
    pending_pairs = set(
        Offer.orders.through.objects.filter(
            offer__status=OfferStatus.PENDING, offer__driver_id__any=driver_ids, order_id__any=order_ids
        ).values_list("offer__driver_id", "order_id")
    )
    results: list[Offer | ValidationError] = []
    offers: list[Offer] = []
    for draft in drafts:
        problem = _draft_problem(draft, drivers, locked_orders, pending_pairs, busy if skip_locked else "")
        if problem:
            results.append(ValidationError(problem))
            continue
        orders = sorted((locked_orders[o.id] for o in draft.orders), key=lambda o: o.id)
        pending_pairs.update((draft.driver.id, order.id) for order in orders)
        offer = Offer(
            organisation=organisation,
            driver_id=draft.driver.id,
            incentive_minor=draft.incentive_minor,
            currency=orders[0].currency,
            attempt=draft.attempt,
            expires_at=expires_at,
            explanation=[str(line)[:300] for line in draft.explanation][:20],
        )
        offer.offered = orders
        offers.append(offer)
        results.append(offer)
    if not offers:
        return results
    to_offer = {o.id: o for offer in offers for o in offer.offered if o.status == OrderStatus.CREATED}
    order_events = offer_orders(
        orders=sorted(to_offer.values(), key=lambda o: o.id), organisation=organisation, actor=actor
    )
    insert_rows(Offer, offers)
    copy_to_history(Offer, [offer.id for offer in offers], actor=actor, reason="offered", history_type="+")
    insert_rows(
        Offer.orders.through,
        [
            Offer.orders.through(offer_id=offer.id, order_id=order.id)
            for offer in offers
            for order in offer.offered
        ],
    )
    record_events(
        organisation=organisation,
        actor=actor,
        events=order_events
        + [
            NewEvent(
                event_type="offer.created",
                subject_type="offer",
                subject_id=offer.id,
                payload={
                    **offer_event_payload(offer, [order.id for order in offer.offered]),
                    "explanation": offer.explanation,
                },
            )
            for offer in offers
        ],
    )
    transaction.on_commit(lambda: push.offers_to_drivers(offers))
    return results


def _draft_problem(draft: OfferDraft, drivers: dict, orders: dict, pending_pairs: set, busy: str) -> dict:
    """Why a draft cannot become an offer, as field -> message; empty when it can."""
    if not draft.orders:
        return {"orders": "Offer at least one order."}
    if draft.incentive_minor < 0:
        return {"incentive_minor": "Must not be negative."}
    driver = drivers.get(draft.driver.id)
    if driver is None:
        return {"driver_id": f"The driver {busy}." if busy else "No such driver in your organisation."}
    if driver.status != DriverStatus.ACTIVE:
        return {"driver_id": f"The driver is {driver.status}, not ACTIVE."}
    if not driver.is_online:
        return {"driver_id": "The driver is offline."}
    if any(order.id not in orders for order in draft.orders):
        return {"orders": f"An order {busy}." if busy else "No such order in your organisation."}
    for order in (orders[o.id] for o in draft.orders):
        if order.status not in OFFERABLE_STATUSES:
            return {"orders": f"Order {order.external_ref} is {order.status}; it cannot be offered."}
    if any((driver.id, order.id) in pending_pairs for order in draft.orders):
        return {"orders": "The driver already has a pending offer for one of these orders."}
    if len({orders[o.id].currency for o in draft.orders}) != 1:
        return {"orders": "Orders in one offer share one currency."}
    return {}


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
    # The driver row is locked: no other acceptance or assignment changes their plan meanwhile.
    why = why_driver_cannot_take(
        Driver.objects.get(id=driver.id),
        orders,
        now=timezone.now(),
        rules=rules_for(DispatchSettings.objects.filter(organisation=organisation).first()),
    )
    if why:
        raise InvalidTransition(
            f"You can no longer take this offer: {why}. It stays open until it expires; "
            "finish or hand back other work first.",
            current_status=offer.status,
            action="accept",
        )
    # Accepted and the rivals withdrawn (with their own reason) before the orders are
    # assigned: an assignment withdraws whatever is still pending for its order.
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
    for order in orders:
        transition_order(
            order_id=order.id, organisation=organisation, action="assign", actor=actor, driver=driver
        )
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
    """An order leaving the pool other than by an acceptance (cancelled, released, assigned by
    a dispatcher, forced)
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
