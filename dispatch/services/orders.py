"""Writes for orders: create, move through the lifecycle, cancel, deliver with proof.

Every status change goes through transition_order: one transaction that locks the order row,
applies the state machine, writes the OrderTransition row and the domain event (from which
webhooks and the live map follow).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from core.actors import Actor
from core.db import insert_rows, lock
from core.events import NewEvent, payload_value, record_event, record_events
from core.exceptions import ConcurrentChange, InvalidTransition
from core.geo import LonLat, PointX, PointY, point_as_dict
from core.history import attribute_change, copy_to_history
from core.uploads import clean_image
from dispatch.engine.geo import haversine_m
from dispatch.models import (
    DRIVER_HOLDS_STATUSES,
    DRIVER_REQUIRED_STATUSES,
    RELEASABLE_STATUSES,
    TERMINAL_STATUSES,
    Order,
    OrderStatus,
    OrderTransition,
    ProofOfDelivery,
)
from dispatch.proof_links import proof_payload
from dispatch.rating_links import rating_link_payload
from dispatch.services.routes import follow_order, lock_routes
from fleet.models import Driver, DriverStatus, Hub, Zone
from identity.models import Client, Organisation

# Actions that take an order out of the pool other than by an acceptance: its pending offers
# are withdrawn first (dispatch.services.offers.withdraw_offers_holding).
# (accept_offer has accepted its offer and withdrawn the rivals before it assigns.)
ACTIONS_ENDING_OFFERS = {
    "release": "taken back",
    "cancel": "cancelled",
    "assign": "given to a driver by a dispatcher",
}
# Actions that need a reason: they take work away from someone or end the order unhappily.
ACTIONS_NEEDING_REASON = frozenset({"release", "fail", "cancel", "return_to_sender"})
ACTIONS = frozenset(
    {
        "offer",
        "assign",
        "release",
        "start_pickup",
        "arrive_pickup",
        "pick_up",
        "arrive_dropoff",
        "deliver",
        "fail",
        "cancel",
        "return_to_sender",
    }
)


@dataclass(frozen=True)
class OrderInput:
    external_ref: str
    pickup_address: str
    pickup_location: Point
    pickup_window_start: datetime
    pickup_window_end: datetime
    dropoff_address: str
    dropoff_location: Point
    dropoff_window_start: datetime
    dropoff_window_end: datetime
    recipient_name: str
    pickup_geofence_m: int | None = None
    dropoff_geofence_m: int | None = None
    weight_kg: Decimal = Decimal("0")
    volume_litres: Decimal = Decimal("0")
    declared_value_minor: int = 0
    tip_minor: int = 0
    currency: str = ""
    priority: int = 1
    recipient_phone: str = ""
    recipient_email: str = ""
    notes: str = ""
    hub_id: object = None
    client_id: object = None


# A pickup this close to one of the organisation's hubs is at that hub (its door, its yard).
HUB_PICKUP_RADIUS_M = 150

# An order flagged for a dispatcher stops needing them once it has ended or left its driver.
ATTENTION_ENDS_IN = frozenset({*TERMINAL_STATUSES, OrderStatus.FAILED, OrderStatus.CREATED})


# Which field a violated table constraint is about, and what to tell the caller.
CONSTRAINT_ERRORS = {
    "order_ref_unique_per_org": ("external_ref", "An order with this reference already exists."),
    "order_pickup_window_ordered": ("pickup_window_end", "Must be after the pickup window start."),
    "order_dropoff_window_ordered": ("dropoff_window_end", "Must be after the drop-off window start."),
    "order_dropoff_closes_after_pickup_opens": (
        "dropoff_window_end",
        "Must be after the pickup window starts.",
    ),
    "order_weight_non_negative": ("weight_kg", "Must not be negative."),
    "order_volume_non_negative": ("volume_litres", "Must not be negative."),
    "order_value_non_negative": ("declared_value_minor", "Must not be negative."),
    "order_tip_non_negative": ("tip_minor", "Must not be negative."),
    "order_priority_range": ("priority", "Out of range."),
    "order_pickup_geofence_range": ("pickup_geofence_m", "Must be between 10 and 1000 metres."),
    "order_dropoff_geofence_range": ("dropoff_geofence_m", "Must be between 10 and 1000 metres."),
}


def _constraint_error(exc: Exception) -> ValidationError:
    """Name the field of a violated table constraint, from the database's or Django's message."""
    message = str(exc)
    for name, (field_name, text) in CONSTRAINT_ERRORS.items():
        if name in message:
            return ValidationError({field_name: text})
    if "unique" in message.lower() and "external_ref" in message:
        return ValidationError({"external_ref": CONSTRAINT_ERRORS["order_ref_unique_per_org"][1]})
    return ValidationError({"body": f"The order breaks a rule of the data model: {message}"})


def order_event_payload(order: Order) -> dict:
    return {
        "order_id": str(order.id),
        "external_ref": order.external_ref,
        "status": order.status,
        "driver_id": str(order.driver_id) if order.driver_id else None,
        "pickup": point_as_dict(order.pickup_location),
        "dropoff": point_as_dict(order.dropoff_location),
    }


@transaction.atomic
def create_order(
    *, organisation: Organisation, actor: Actor, data: OrderInput, limited_to_client_id=None
) -> Order:
    """Create an order in CREATED. A duplicate external_ref is refused, naming the field.

    `limited_to_client_id` is the client a client-limited caller acts for: the order is that
    client's, and naming another client is refused.
    """
    client_id = data.client_id
    if limited_to_client_id is not None:
        if client_id is not None and str(client_id) != str(limited_to_client_id):
            raise ValidationError({"client_id": "You can place orders only for your own client."})
        client_id = limited_to_client_id
    if client_id is not None:
        client = Client.objects.filter(organisation=organisation, id=client_id).first()
        if client is None:
            raise ValidationError({"client_id": "No such client in your organisation."})
        if not client.is_active:
            raise ValidationError(
                {"client_id": f"The client {client.name} is paused; it takes no new orders."}
            )
    hub = None
    if data.hub_id is not None:
        hub = Hub.objects.filter(organisation=organisation, id=data.hub_id).first()
        if hub is None:
            raise ValidationError({"hub_id": "No such hub in your organisation."})
    _refuse_impossible(
        organisation.id,
        dropoff_window_end=data.dropoff_window_end,
        pickup_location=data.pickup_location,
        dropoff_location=data.dropoff_location,
        hub=hub,
    )
    order = Order(
        organisation=organisation,
        client_id=client_id,
        external_ref=data.external_ref,
        hub=hub,
        pickup_address=data.pickup_address,
        pickup_location=data.pickup_location,
        pickup_window_start=data.pickup_window_start,
        pickup_window_end=data.pickup_window_end,
        dropoff_address=data.dropoff_address,
        dropoff_location=data.dropoff_location,
        dropoff_window_start=data.dropoff_window_start,
        dropoff_window_end=data.dropoff_window_end,
        pickup_geofence_m=data.pickup_geofence_m,
        dropoff_geofence_m=data.dropoff_geofence_m,
        weight_kg=data.weight_kg,
        volume_litres=data.volume_litres,
        declared_value_minor=data.declared_value_minor,
        tip_minor=data.tip_minor,
        currency=data.currency or organisation.currency,
        priority=data.priority,
        recipient_name=data.recipient_name,
        recipient_phone=data.recipient_phone,
        recipient_email=data.recipient_email,
        notes=data.notes,
    )
    if Order.objects.filter(organisation=organisation, external_ref=data.external_ref).exists():
        raise ValidationError({"external_ref": "An order with this reference already exists."})
    # Field validation here; the table's constraints are checked by the database on insert
    # (checking each one first would cost a query apiece) and named below if one fails.
    order.full_clean(exclude=["status"], validate_constraints=False)
    _save_and_record(order, actor=actor, event_type="order.created", reason="", extra_payload={})
    return order


def _save_and_record(
    order: Order, *, actor: Actor, event_type: str, reason: str, extra_payload: dict
) -> None:
    """Save a new or edited order (a broken table rule named by its field) with its history
    row and its event."""
    attribute_change(order, actor, reason or event_type.removeprefix("order."))
    try:
        with transaction.atomic():
            order.save()
    except IntegrityError as exc:
        raise _constraint_error(exc) from exc
    record_event(
        organisation=order.organisation_id,
        client_id=order.client_id,
        event_type=event_type,
        subject_type="order",
        subject_id=order.id,
        actor=actor,
        reason=reason,
        payload={**order_event_payload(order), **extra_payload},
    )


def _refuse_impossible(
    organisation_id, *, dropoff_window_end, pickup_location, dropoff_location, hub: Hub | None
) -> None:
    """Refuse an order nobody could carry: its drop-off window has closed, or a place lies
    outside every service zone of an organisation that has zones (a pickup at the order's
    hub, within HUB_PICKUP_RADIUS_M of it, is always served)."""
    if dropoff_window_end <= timezone.now():
        raise ValidationError({"dropoff_window_end": "The drop-off window has already closed."})
    zones = Zone.objects.filter(organisation_id=organisation_id)
    if not zones.exists():
        return
    places = [("dropoff_location", dropoff_location)]
    pickup_at_hub = hub is not None and (
        haversine_m(hub.location.y, hub.location.x, pickup_location.y, pickup_location.x)
        <= HUB_PICKUP_RADIUS_M
    )
    if not pickup_at_hub:
        places.insert(0, ("pickup_location", pickup_location))
    outside = {
        field: "Outside every service zone of your organisation."
        for field, point in places
        if not zones.filter(area__intersects=point).exists()
    }
    if outside:
        raise ValidationError(outside)


def transition_order(
    *,
    order_id,
    organisation: Organisation,
    action: str,
    actor: Actor,
    reason: str = "",
    driver: Driver | None = None,
    is_override: bool = False,
    held_by: Driver | None = None,
) -> Order:
    """Apply one lifecycle action to an order, atomically and exactly once.

    The row is locked (PostgreSQL) and the save is conditional on the status read (both
    databases), so of two concurrent transitions one applies and the other gets
    InvalidTransition or ConcurrentChange. With `held_by` (a driver moving their own order)
    the order must still be theirs under that lock.
    """
    if action not in ACTIONS:
        raise ValidationError({"action": f"Unknown action '{action}'."})
    if action in ACTIONS_NEEDING_REASON and not reason.strip():
        raise ValidationError({"reason": f"'{action}' needs a reason."})
    try:
        with transaction.atomic():
            lock_holder(order_id)
            if action in ACTIONS_ENDING_OFFERS:
                why = reason.strip()
                _withdraw_pending_offers(
                    order_id,
                    organisation,
                    actor,
                    f"The order was {ACTIONS_ENDING_OFFERS[action]}" + (f": {why}" if why else "."),
                )
            return _apply_transition(
                order_id=order_id,
                organisation=organisation,
                action=action,
                actor=actor,
                reason=reason.strip(),
                driver=driver,
                is_override=is_override,
                held_by=held_by,
            )
    except ConcurrentTransition as exc:
        raise ConcurrentChange("The order changed while this request ran; read it and retry.") from exc


def lock_holder(order_id) -> None:
    """Lock the driver who holds the order (if any) before the order itself: the driver, then
    their orders, then their route, as every service locks. A driver's route changes with each
    of their orders, so two changes for one driver queue on the driver row rather than meeting
    in a circle (PostgreSQL also checks a changed stop's order at commit)."""
    driver_id = Order.objects.filter(id=order_id).values_list("driver_id", flat=True).first()
    if driver_id is not None:
        list(lock(Driver.objects).filter(id=driver_id).values_list("id", flat=True))


def _withdraw_pending_offers(order_id, organisation: Organisation, actor: Actor, reason: str) -> None:
    # Imported here: the offers service builds on this one (it moves orders through it).
    from dispatch.services.offers import withdraw_offers_holding

    withdraw_offers_holding(order_id=order_id, organisation=organisation, actor=actor, reason=reason.strip())


def _apply_transition(
    *, order_id, organisation, action, actor, reason, driver, is_override, held_by
) -> Order:
    kwargs = {}
    if action == "assign":
        # The driver row is locked before the order (as a suspension locks the driver, then
        # its orders), and its status read under that lock: a driver suspended a moment ago
        # is never given work.
        if driver is None:
            raise ValidationError({"driver_id": "Assigning needs a driver."})
        driver = lock(Driver.objects).filter(id=driver.id, organisation=organisation).first()
        if driver is None:
            raise ValidationError({"driver_id": "No such driver in your organisation."})
        if driver.status != DriverStatus.ACTIVE:
            raise ValidationError({"driver_id": f"The driver is {driver.status}, not ACTIVE."})
        kwargs["driver"] = driver
    order = lock(Order.objects).get(id=order_id, organisation=organisation)
    if held_by is not None and order.driver_id != held_by.id:
        raise ValidationError({"order_id": "This order is not assigned to you."})
    from_status = order.status
    if action == "deliver" and not ProofOfDelivery.objects.filter(order=order).exists():
        raise ValidationError({"proof_of_delivery": "Delivering needs a proof of delivery."})
    previous_driver = order.driver
    try:
        getattr(order, action)(**kwargs)
    except TransitionNotAllowed as exc:
        raise InvalidTransition(
            f"Cannot {action.replace('_', ' ')} an order that is {from_status}.",
            current_status=from_status,
            action=action,
        ) from exc
    if order.attention_reason and (order.driver != previous_driver or order.status in ATTENTION_ENDS_IN):
        order.attention_reason, order.attention_raised_at = "", None
    attribute_change(order, actor, f"{action}: {reason}" if reason else action)
    order.save()
    _record_transition(
        order=order,
        organisation=organisation,
        action=action,
        from_status=from_status,
        previous_driver=previous_driver,
        actor=actor,
        reason=reason,
        is_override=is_override,
    )
    return order


def _record_transition(*, order: Order, organisation: Organisation, actor: Actor, **details) -> None:
    """The order's history row, its domain event (from which webhooks follow), and the driver's
    route brought in line (stops added, completed or removed); `details` as _transition_records
    takes them. The routes are locked before the event is numbered: every writer takes a
    route's lock before the organisation's event counter, so a transition and the SLA watch
    never wait on each other in a circle."""
    row, event = _transition_records(order=order, actor=actor, **details)
    row.save()
    previous_driver_id = getattr(details["previous_driver"], "id", None)
    lock_routes(driver_ids=[previous_driver_id, order.driver_id])
    record_events(organisation=organisation, actor=actor, events=[event])
    follow_order(order=order, previous_driver_id=previous_driver_id, actor=actor)


def _transition_records(
    *,
    order: Order,
    action: str,
    from_status: str,
    previous_driver,
    actor: Actor,
    reason: str,
    is_override: bool,
) -> tuple[OrderTransition, NewEvent]:
    """An applied transition's history row and event, unsaved (one or a batch is written)."""
    row = OrderTransition(
        order_id=order.id,
        action=action,
        from_status=from_status,
        to_status=order.status,
        driver_id=order.driver_id or (previous_driver.id if previous_driver else None),
        reason=reason,
        is_override=is_override,
        **actor.as_fields(),
    )
    payload = order_event_payload(order)
    payload.update(from_status=from_status, action=action, is_override=is_override)
    if order.status == OrderStatus.DELIVERED:
        proof = ProofOfDelivery.objects.filter(order=order).first()
        payload["proof_of_delivery"] = proof_payload(proof) if proof else None
        payload["rating_link"] = rating_link_payload(order, delivered=timezone.now())
    if previous_driver and previous_driver.id != order.driver_id:
        payload["previous_driver_id"] = str(previous_driver.id)
    event = NewEvent(
        event_type="order.released" if action == "release" else f"order.{order.status.lower()}",
        subject_type="order",
        subject_id=order.id,
        client_id=order.client_id,
        reason=reason,
        payload=payload,
    )
    return row, event


@dataclass(slots=True)
class OfferableOrder:
    """A locked order as making offers reads it (lock_offerable_orders): the columns the
    checks, the offer and the `order.offered` event use, its places as plain lon/lat. Plain
    rows, not model instances: a round locks hundreds, and building each Order and reading its
    geometries is most of a round's Python time otherwise."""

    id: Any
    organisation_id: Any
    external_ref: str
    status: str
    currency: str
    driver_id: Any
    client_id: Any
    pickup_location: LonLat
    dropoff_location: LonLat


def lock_offerable_orders(*, organisation: Organisation, order_ids: list, skip_locked: bool) -> dict:
    """The organisation's orders among `order_ids`, locked (by id), as OfferableOrder by id.
    `skip_locked`: rows another transaction holds are left out, not waited for."""
    columns = ("id", "organisation_id", "external_ref", "status", "currency", "driver_id", "client_id")
    rows = (
        lock(Order.objects.filter(organisation=organisation, id__any=order_ids), skip_locked=skip_locked)
        .order_by("id")
        .values_list(
            *columns,
            PointX("pickup_location"),
            PointY("pickup_location"),
            PointX("dropoff_location"),
            PointY("dropoff_location"),
        )
    )
    return {row[0]: OfferableOrder(*row[:7], LonLat(row[7], row[8]), LonLat(row[9], row[10])) for row in rows}


def offer_orders(*, orders: list[OfferableOrder], organisation: Organisation, actor: Actor) -> list[NewEvent]:
    """Move locked CREATED orders to OFFERED together (a round's offers): the transition and
    history rows of transition_order's "offer", in a few statements, not a few per order. The
    move is the Order state machine's `offer` transition; the update is conditional on the
    status, as a single transition's save is. Returns the orders' `order.offered` events, for
    the caller to record in the same transaction together with its own (make_offers: one
    numbering and one insert for the whole round)."""
    if not orders:
        return []
    transitions = Order.offer._django_fsm
    for order in orders:
        if not transitions.has_transition(order.status):
            raise InvalidTransition(
                f"Cannot offer an order that is {order.status}.", current_status=order.status, action="offer"
            )
        order.status = transitions.get_transition(order.status).target
    moved = Order.objects.filter(
        id__any=[order.id for order in orders], organisation=organisation, status=OrderStatus.CREATED
    ).update(status=OrderStatus.OFFERED, updated_at=timezone.now())
    if moved != len(orders):
        raise ConcurrentChange("An order changed while it was being offered; read it and retry.")
    copy_to_history(Order, [order.id for order in orders], actor=actor, reason="offer")
    records = [
        _transition_records(
            order=order,
            action="offer",
            from_status=OrderStatus.CREATED,
            previous_driver=None,
            actor=actor,
            reason="",
            is_override=False,
        )
        for order in orders
    ]
    insert_rows(OrderTransition, [row for row, _ in records])
    return [event for _, event in records]


@transaction.atomic
def deliver_order(
    *,
    order_id,
    organisation: Organisation,
    driver: Driver,
    actor: Actor,
    location: Point,
    captured_at: datetime,
    photo=None,
    signature=None,
    recipient_name: str = "",
    accuracy_m: float | None = None,
) -> Order:
    """Store the proof of delivery and mark the order DELIVERED, both or neither.

    Images are checked, decoded and re-encoded without metadata (core.uploads) before the
    order row is locked, so no heavy work holds the lock; if the database refuses, the
    stored files are removed again.
    """
    if photo is None and signature is None:
        raise ValidationError({"photo": "A photo or a signature is needed."})
    images = {
        name: clean_image(upload, field=name)
        for name, upload in (("photo", photo), ("signature", signature))
        if upload is not None
    }
    lock_holder(order_id)
    order = lock(Order.objects).get(id=order_id, organisation=organisation)
    if order.driver_id != driver.id:
        raise ValidationError({"order_id": "This order is not assigned to you."})
    if order.status != OrderStatus.ARRIVED_DROPOFF:
        raise InvalidTransition(
            f"Cannot deliver an order that is {order.status}.", current_status=order.status, action="deliver"
        )
    if ProofOfDelivery.objects.filter(order=order).exists():
        raise ValidationError({"proof_of_delivery": "This order already has a proof of delivery."})
    _check_proof_place(order, location=location)
    proof = ProofOfDelivery(
        order=order,
        driver=driver,
        location=location,
        accuracy_m=accuracy_m,
        captured_at=captured_at,
        recipient_name=recipient_name,
    )
    for name, image in images.items():
        getattr(proof, name).save(image.name, image, save=False)
    try:
        with transaction.atomic():
            proof.save()
            return transition_order(
                order_id=order.id, organisation=organisation, action="deliver", actor=actor
            )
    except Exception:
        for name in images:
            getattr(proof, name).delete(save=False)
        raise


def _check_proof_place(order: Order, *, location: Point) -> None:
    """A proof is taken at the door: within POD_GEOFENCE_RADIUS_M of the drop-off."""
    away = haversine_m(location.y, location.x, order.dropoff_location.y, order.dropoff_location.x)
    radius = settings.POD_GEOFENCE_RADIUS_M
    if away > radius:
        raise ValidationError(
            {
                "location": f"The proof was taken {away:.0f} m from the drop-off; it must be within {radius:.0f} m."
            }
        )


@transaction.atomic
def force_order_status(
    *, order_id, organisation: Organisation, to_status: str, actor: Actor, reason: str
) -> Order:
    """A human override (admin): set any status, outside the state machine, with a reason.

    Audited like a transition (is_override=True) and emitted as an event, so the OMS hears
    about it. Forcing a status that needs a driver onto an order without one is refused.
    """
    if to_status not in OrderStatus.values:
        raise ValidationError({"to_status": f"Unknown status '{to_status}'."})
    if not reason.strip():
        raise ValidationError({"reason": "An override needs a reason."})
    lock_holder(order_id)
    if to_status not in (OrderStatus.CREATED, OrderStatus.OFFERED):
        _withdraw_pending_offers(order_id, organisation, actor, f"The order was set to {to_status}: {reason}")
    order = lock(Order.objects).get(id=order_id, organisation=organisation)
    from_status = order.status
    if to_status in DRIVER_REQUIRED_STATUSES and order.driver_id is None:
        raise ValidationError({"to_status": f"{to_status} needs an assigned driver; assign one first."})
    driver_id = order.driver_id if to_status in DRIVER_REQUIRED_STATUSES else None
    updated = Order.objects.filter(id=order.id, status=from_status).update(
        status=to_status, driver_id=driver_id
    )
    if not updated:
        raise ConcurrentChange("The order changed while the override ran; try again.")
    previous_driver = order.driver
    order.refresh_from_db()
    attribute_change(order, actor, f"override: {reason.strip()}")
    order.save(update_fields=["updated_at"])  # the history row of the override
    _record_transition(
        order=order,
        organisation=organisation,
        action="override",
        from_status=from_status,
        previous_driver=previous_driver,
        actor=actor,
        reason=reason.strip(),
        is_override=True,
    )
    return order


@transaction.atomic
def take_work_from_unavailable_driver(*, driver_id, organisation_id, driver_status: str) -> None:
    """Run when a driver stops being ACTIVE (in the transaction that changed their status),
    after their pending offers were withdrawn (dispatch.services.offers).

    Orders they have not picked up go back to the pool, each with its reason as an event;
    orders they carry (picked up) are flagged for a dispatcher, who decides whether the driver
    finishes or how the parcel is recovered. The reasons name the driver's status, never the
    private reason for the decision.
    """
    organisation = Organisation.objects.get(id=organisation_id)
    status_word = DriverStatus(driver_status).label.lower()
    rule = Actor.system("driver-no-longer-active")
    orders = lock(Order.objects).filter(driver_id=driver_id).filter(status__in=DRIVER_HOLDS_STATUSES)
    for order in orders:
        if order.status in RELEASABLE_STATUSES:
            transition_order(
                order_id=order.id,
                organisation=organisation,
                action="release",
                actor=rule,
                reason=f"The driver can no longer take work ({status_word}); the order is open again.",
            )
        else:
            _flag_for_dispatcher(
                order,
                actor=rule,
                reason=f"The driver carrying this order can no longer take work ({status_word}): "
                "decide whether they finish the delivery or how the parcel is recovered.",
            )


def _flag_for_dispatcher(order: Order, *, actor: Actor, reason: str) -> None:
    order.attention_reason, order.attention_raised_at = reason, timezone.now()
    attribute_change(order, actor, reason)
    order.save(update_fields=["attention_reason", "attention_raised_at", "updated_at"])
    record_event(
        organisation=order.organisation_id,
        client_id=order.client_id,
        event_type="order.needs_attention",
        subject_type="order",
        subject_id=order.id,
        actor=actor,
        reason=reason,
        payload={**order_event_payload(order), "attention_reason": reason},
    )


# --- editing an order's details ---------------------------------------------------------
#
# Which fields may change in which status, in one place. Whose order it is and what it is
# called (organisation, client, external_ref, currency) never change. Where, when and what
# is carried only while nobody has been offered it: a driver plans their route and vehicle on
# them. How to reach the recipient, the notes and the stops' geofence radii until the order
# ends (a dispatcher widens a fence for a yard the driver is circling). Nothing once ended.
# The status and the driver move only through transitions and overrides.
ORDER_DETAILS_FIELDS = frozenset(
    {
        "hub",
        "pickup_address",
        "pickup_location",
        "pickup_window_start",
        "pickup_window_end",
        "dropoff_address",
        "dropoff_location",
        "dropoff_window_start",
        "dropoff_window_end",
        "weight_kg",
        "volume_litres",
        "declared_value_minor",
        "tip_minor",
        "priority",
    }
)
ORDER_UNTIL_END_FIELDS = frozenset(
    {
        "recipient_name",
        "recipient_phone",
        "recipient_email",
        "notes",
        "pickup_geofence_m",
        "dropoff_geofence_m",
    }
)
EDITABLE_FIELDS_BY_STATUS = {
    status: ORDER_DETAILS_FIELDS | ORDER_UNTIL_END_FIELDS
    if status == OrderStatus.CREATED
    else frozenset()
    if status in TERMINAL_STATUSES
    else ORDER_UNTIL_END_FIELDS
    for status in OrderStatus
}


def check_order_details(order: Order, changed: set[str]) -> None:
    """Everything an edit of `order` checks, without saving: the changed fields may change in
    its status, a hub is the organisation's, the fields are valid and the table's rules hold."""
    editable = EDITABLE_FIELDS_BY_STATUS[order.status]
    refused = sorted(set(changed) - editable)
    if refused:
        raise ValidationError(dict.fromkeys(refused, f"Cannot be changed while the order is {order.status}."))
    if "hub" in changed and order.hub is not None and order.hub.organisation_id != order.organisation_id:
        raise ValidationError({"hub": "No such hub in the order's organisation."})
    if changed & {"dropoff_window_end", "pickup_location", "dropoff_location", "hub"}:
        _refuse_impossible(
            order.organisation_id,
            dropoff_window_end=order.dropoff_window_end,
            pickup_location=order.pickup_location,
            dropoff_location=order.dropoff_location,
            hub=order.hub,
        )
    order.full_clean(exclude=["status"], validate_constraints=False)
    try:
        order.validate_constraints()
    except ValidationError as exc:
        raise _constraint_error(exc) from exc


@transaction.atomic
def update_order_details(
    *, order_id, organisation: Organisation, changes: dict, actor: Actor, reason: str
) -> Order:
    """Change an order's details where its status allows (EDITABLE_FIELDS_BY_STATUS), with a
    reason: recorded as `order.updated` (each field old -> new) and in the order's history
    with who did it and why."""
    if not reason.strip():
        raise ValidationError({"reason": "A change to an order needs a reason."})
    order = lock(Order.objects).get(id=order_id, organisation=organisation)
    diff = {}
    for name, value in changes.items():
        if name not in ORDER_DETAILS_FIELDS | ORDER_UNTIL_END_FIELDS:
            raise ValidationError({name: "Cannot be changed."})
        old = getattr(order, name)
        if payload_value(old) != payload_value(value):
            diff[name] = {"old": payload_value(old), "new": payload_value(value)}
            setattr(order, name, value)
    if not diff:
        return order
    check_order_details(order, set(diff))
    _save_and_record(
        order, actor=actor, event_type="order.updated", reason=reason.strip(), extra_payload={"changes": diff}
    )
    return order
