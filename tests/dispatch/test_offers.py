"""Offers: made to an ACTIVE online driver, answered once (accepted, declined, expired or
withdrawn), with history and events; of two drivers accepting the same order, one wins."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from core.actors import Actor
from core.exceptions import InvalidTransition
from core.models import DomainEvent
from dispatch.models import Offer, OfferStatus, Order, OrderStatus
from dispatch.selectors import drivers_excluded_for
from dispatch.services.offers import accept_offer, decline_offer, expire_due_offers, make_offer
from dispatch.services.orders import create_order, force_order_status, transition_order
from fleet.models import DriverStatus
from fleet.services import change_driver_status, set_driver_online
from tests.conftest import make_active_driver, order_payload
from tests.dispatch.factories import order_input

SYSTEM = Actor.system("test-matching")


def new_order(org, ref):
    return create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload(ref=ref)))


def online_driver(org, n: int):
    driver = make_active_driver(org, name=f"Courier {n}", phone=f"+35840100020{n}", plate=f"OF-{n}")
    set_driver_online(driver_id=driver.id, organisation=org, online=True, actor=SYSTEM)
    driver.refresh_from_db()
    return driver


def offer(org, driver, *orders, minutes=5, incentive_minor=300):
    return make_offer(
        organisation=org,
        driver=driver,
        orders=list(orders),
        expires_at=timezone.now() + timedelta(minutes=minutes),
        incentive_minor=incentive_minor,
        actor=SYSTEM,
    )


def events(org, prefix="offer."):
    return list(
        DomainEvent.objects.filter(organisation=org, event_type__startswith=prefix)
        .order_by("sequence")
        .values_list("event_type", flat=True)
    )


def state(*rows):
    """Statuses and drivers of offers and orders, to show that a refusal changed nothing."""
    return [
        (type(row).__name__, row.pk, *type(row).objects.values_list("status").get(pk=row.pk)) for row in rows
    ]


def test_an_offer_puts_orders_to_an_online_active_driver(org):
    driver = online_driver(org, 1)
    order = new_order(org, "O-1")
    made = offer(org, driver, order, incentive_minor=450)
    order.refresh_from_db()
    assert order.status == OrderStatus.OFFERED and order.driver_id is None
    assert made.status == OfferStatus.PENDING and made.incentive_minor == 450 and made.currency == "EUR"
    assert list(made.orders.all()) == [order]
    assert events(org) == ["offer.created"]
    event = DomainEvent.objects.get(event_type="offer.created")
    assert event.payload["order_ids"] == [str(order.id)] and event.payload["incentive_minor"] == 450
    assert made.history.count() == 1


def test_offers_are_refused_for_an_offline_or_inactive_driver_or_work_not_in_the_pool(org):
    driver = online_driver(org, 1)
    offline = make_active_driver(org, name="Offline", phone="+358401000299", plate="OFF-1")
    order = new_order(org, "O-1")
    with pytest.raises(ValidationError) as offline_error:
        offer(org, offline, order)
    assert "driver_id" in offline_error.value.message_dict
    change_driver_status(
        driver_id=driver.id, organisation=org, action="suspend", actor=SYSTEM, reason="Checks."
    )
    with pytest.raises(ValidationError) as suspended:
        offer(org, driver, order)
    assert "SUSPENDED" in suspended.value.message_dict["driver_id"][0]
    other = online_driver(org, 2)
    transition_order(order_id=order.id, organisation=org, action="assign", actor=SYSTEM, driver=other)
    with pytest.raises(ValidationError) as assigned:
        offer(org, other, order)
    assert "ASSIGNED" in assigned.value.message_dict["orders"][0]
    with pytest.raises(ValidationError) as past:
        offer(org, other, new_order(org, "O-2"), minutes=-1)
    assert "expires_at" in past.value.message_dict
    assert not Offer.objects.exists() and events(org) == []


def test_accepting_assigns_the_orders_and_withdraws_the_rival_offers(org):
    me, rival = online_driver(org, 1), online_driver(org, 2)
    shared, only_rival = new_order(org, "SHARED"), new_order(org, "RIVAL-ONLY")
    mine = offer(org, me, shared, incentive_minor=500)
    theirs = offer(org, rival, shared, only_rival)
    accept_offer(offer_id=mine.id, driver=me, actor=Actor.system("driver"))
    mine.refresh_from_db()
    theirs.refresh_from_db()
    shared.refresh_from_db()
    only_rival.refresh_from_db()
    assert mine.status == OfferStatus.ACCEPTED and mine.responded_at and mine.incentive_minor == 500
    assert (shared.status, shared.driver_id) == (OrderStatus.ASSIGNED, me.id)
    assert theirs.status == OfferStatus.WITHDRAWN and theirs.reason == "Another driver accepted this work."
    # The rival's other order is offered to nobody now: it is back in the pool.
    assert only_rival.status == OrderStatus.CREATED
    assert events(org) == ["offer.created", "offer.created", "offer.accepted", "offer.withdrawn"]
    assert [h.status for h in mine.history.order_by("history_date")] == ["PENDING", "ACCEPTED"]


def test_declining_frees_the_order_and_the_driver_is_left_out_next_time(org):
    me, other = online_driver(org, 1), online_driver(org, 2)
    order, shared = new_order(org, "O-1"), new_order(org, "O-2")
    declined = offer(org, me, order)
    offer(org, me, shared)
    offer(org, other, shared)
    decline_offer(offer_id=declined.id, driver=me, actor=SYSTEM, reason="  Too far.  ")
    declined.refresh_from_db()
    order.refresh_from_db()
    assert (declined.status, declined.reason) == (OfferStatus.DECLINED, "Too far.")
    assert order.status == OrderStatus.CREATED
    assert drivers_excluded_for(order) == {me.id}
    # Declining one of two offers of an order leaves it offered to the other driver.
    decline_offer(offer_id=Offer.objects.get(driver=me, orders=shared).id, driver=me, actor=SYSTEM)
    shared.refresh_from_db()
    assert shared.status == OrderStatus.OFFERED
    assert drivers_excluded_for(shared) == {me.id}


def test_due_offers_expire_and_their_orders_go_back_to_the_pool(org):
    me, other = online_driver(org, 1), online_driver(org, 2)
    lonely, shared = new_order(org, "LONELY"), new_order(org, "SHARED")
    due = offer(org, me, lonely)
    due_shared = offer(org, me, shared)
    offer(org, other, shared, minutes=30)
    assert expire_due_offers(timezone.now()) == 0
    assert expire_due_offers(timezone.now() + timedelta(minutes=6)) == 2
    for row in (due, due_shared, lonely, shared):
        row.refresh_from_db()
    assert due.status == due_shared.status == OfferStatus.EXPIRED
    assert lonely.status == OrderStatus.CREATED
    assert shared.status == OrderStatus.OFFERED  # still offered to the other driver
    assert drivers_excluded_for(lonely) == {me.id}
    assert events(org).count("offer.expired") == 2
    assert events(org, "order.released") == ["order.released"]


@pytest.mark.parametrize("closed_by", ["withdrawn", "expired", "declined", "accepted"])
def test_a_closed_offer_cannot_be_answered_and_nothing_changes(org, closed_by):
    me, rival = online_driver(org, 1), online_driver(org, 2)
    order = new_order(org, "O-1")
    mine = offer(org, me, order)
    if closed_by == "withdrawn":
        accept_offer(offer_id=offer(org, rival, order).id, driver=rival, actor=SYSTEM)
    elif closed_by == "expired":
        expire_due_offers(timezone.now() + timedelta(minutes=6))
    elif closed_by == "declined":
        decline_offer(offer_id=mine.id, driver=me, actor=SYSTEM)
    else:
        accept_offer(offer_id=mine.id, driver=me, actor=SYSTEM)
    before, event_count = state(mine, order), DomainEvent.objects.count()
    for answer in (accept_offer, decline_offer):
        with pytest.raises(InvalidTransition) as refused:
            answer(offer_id=mine.id, driver=me, actor=SYSTEM)
        assert closed_by in refused.value.message
        assert refused.value.current_status == closed_by.upper()
    assert state(mine, order) == before and DomainEvent.objects.count() == event_count


def test_an_offer_past_its_expiry_cannot_be_accepted_before_the_task_runs(org):
    me = online_driver(org, 1)
    order = new_order(org, "O-1")
    mine = offer(org, me, order)
    now = timezone.now()
    Offer.objects.filter(id=mine.id).update(
        created_at=now - timedelta(minutes=5), expires_at=now - timedelta(seconds=1)
    )
    before = state(mine, order)
    with pytest.raises(InvalidTransition) as refused:
        accept_offer(offer_id=mine.id, driver=me, actor=SYSTEM)
    assert "expired" in refused.value.message
    assert state(mine, order) == before


def test_someone_elses_offer_cannot_be_answered(org):
    me, other = online_driver(org, 1), online_driver(org, 2)
    order = new_order(org, "O-1")
    theirs = offer(org, other, order)
    with pytest.raises(ValidationError) as refused:
        accept_offer(offer_id=theirs.id, driver=me, actor=SYSTEM)
    assert "offer_id" in refused.value.message_dict
    theirs.refresh_from_db()
    assert theirs.status == OfferStatus.PENDING


def test_a_driver_who_is_suspended_loses_their_pending_offers_with_events(org):
    me = online_driver(org, 1)
    order = new_order(org, "O-1")
    mine = offer(org, me, order)
    change_driver_status(
        driver_id=me.id, organisation=org, action="suspend", actor=SYSTEM, reason="Fraud check."
    )
    mine.refresh_from_db()
    order.refresh_from_db()
    assert mine.status == OfferStatus.WITHDRAWN and "suspended" in mine.reason.lower()
    assert "Fraud" not in mine.reason  # the private reason stays private
    assert order.status == OrderStatus.CREATED
    assert "offer.withdrawn" in events(org)
    assert Order.objects.get(id=order.id).driver_id is None
    assert me.__class__.objects.get(id=me.id).status == DriverStatus.SUSPENDED


@pytest.mark.django_db(transaction=True)
def test_two_drivers_accepting_the_same_order_at_once_one_wins(org):
    """Each thread answers its own offer of one order; on PostgreSQL the order's row lock
    makes the second wait and then find its offer withdrawn."""
    first, second = online_driver(org, 1), online_driver(org, 2)
    order = new_order(org, "RACE")
    offers = {first: offer(org, first, order), second: offer(org, second, order)}
    barrier = threading.Barrier(2)
    outcomes = {}

    def accept(driver):
        try:
            barrier.wait(timeout=5)
            accept_offer(offer_id=offers[driver].id, driver=driver, actor=SYSTEM)
            outcomes[driver.id] = "won"
        except InvalidTransition as exc:
            outcomes[driver.id] = exc.message
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(driver,)) for driver in offers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcome == "won" for outcome in outcomes.values()) == [False, True], outcomes
    winner = next(driver for driver in offers if outcomes[driver.id] == "won")
    loser = next(driver for driver in offers if driver != winner)
    assert "withdrawn" in outcomes[loser.id]
    order.refresh_from_db()
    assert (order.status, order.driver_id) == (OrderStatus.ASSIGNED, winner.id)
    statuses = {driver: Offer.objects.get(id=offers[driver].id).status for driver in offers}
    assert statuses == {winner: OfferStatus.ACCEPTED, loser: OfferStatus.WITHDRAWN}
    assert events(org, "order.assigned") == ["order.assigned"]


def test_cancelling_an_order_withdraws_its_pending_offers_and_frees_their_other_orders(org):
    me, other = online_driver(org, 1), online_driver(org, 2)
    cancelled, batched = new_order(org, "CANCELLED"), new_order(org, "BATCHED")
    batch = offer(org, me, cancelled, batched)
    single = offer(org, other, cancelled)
    transition_order(
        order_id=cancelled.id, organisation=org, action="cancel", actor=SYSTEM, reason="Customer called."
    )
    for row in (batch, single, cancelled, batched):
        row.refresh_from_db()
    assert cancelled.status == OrderStatus.CANCELLED
    assert batch.status == single.status == OfferStatus.WITHDRAWN
    assert batch.reason == "The order was cancelled: Customer called."
    # The batch's other order is offered to nobody now: back in the pool, not cancelled.
    assert batched.status == OrderStatus.CREATED
    assert events(org) == ["offer.created", "offer.created", "offer.withdrawn", "offer.withdrawn"]
    assert events(org, "order.released") == ["order.released"]
    # Accepting the withdrawn offer is the plain 409 it says: withdrawn.
    with pytest.raises(InvalidTransition, match="withdrawn"):
        accept_offer(offer_id=single.id, driver=other, actor=SYSTEM)


def test_a_refused_cancel_withdraws_nothing(org):
    me = online_driver(org, 1)
    order = new_order(org, "O-1")
    made = offer(org, me, order)
    with pytest.raises(ValidationError):
        transition_order(order_id=order.id, organisation=org, action="cancel", actor=SYSTEM, reason=" ")
    made.refresh_from_db()
    assert made.status == OfferStatus.PENDING and events(org) == ["offer.created"]


def test_an_override_out_of_the_pool_withdraws_pending_offers(org):
    me = online_driver(org, 1)
    order = new_order(org, "O-1")
    made = offer(org, me, order)
    force_order_status(
        order_id=order.id, organisation=org, to_status="CANCELLED", actor=SYSTEM, reason="Dup."
    )
    made.refresh_from_db()
    assert made.status == OfferStatus.WITHDRAWN and made.reason == "The order was set to CANCELLED: Dup."


def test_a_dispatchers_assign_withdraws_every_pending_offer_for_the_order(org):
    me, other, chosen = online_driver(org, 1), online_driver(org, 2), online_driver(org, 3)
    assigned, batched = new_order(org, "ASSIGNED"), new_order(org, "BATCHED")
    batch = offer(org, me, assigned, batched)
    single = offer(org, other, assigned)
    own = offer(org, chosen, assigned)
    dispatcher = Actor.system("test-dispatcher")
    transition_order(
        order_id=assigned.id,
        organisation=org,
        action="assign",
        actor=dispatcher,
        driver=chosen,
        reason="Regular customer of theirs.",
    )
    for row in (batch, single, own, assigned, batched):
        row.refresh_from_db()
    assert (assigned.status, assigned.driver_id) == (OrderStatus.ASSIGNED, chosen.id)
    assert batch.status == single.status == own.status == OfferStatus.WITHDRAWN
    assert single.reason == "The order was given to a driver by a dispatcher: Regular customer of theirs."
    assert batched.status == OrderStatus.CREATED  # offered to nobody else now: back in the pool
    assert events(org).count("offer.withdrawn") == 3
    with pytest.raises(InvalidTransition, match="withdrawn"):
        accept_offer(offer_id=single.id, driver=other, actor=SYSTEM)


def test_accepting_still_withdraws_the_rivals_with_its_own_reason(org):
    me, other = online_driver(org, 1), online_driver(org, 2)
    order = new_order(org, "O-1")
    mine, theirs = offer(org, me, order), offer(org, other, order)
    accept_offer(offer_id=mine.id, driver=me, actor=SYSTEM)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == (OfferStatus.ACCEPTED, OfferStatus.WITHDRAWN)
    assert theirs.reason == "Another driver accepted this work."
