"""Orders and their one state machine, offers, routes with stops, and proof of delivery."""

import uuid

from django.contrib.gis.db import models
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db.models import F, Q
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.history import History
from core.models import ActorFields
from core.validators import e164_phone
from fleet.models import Driver, Hub
from identity.models import Client, Organisation


class OrderStatus(models.TextChoices):
    CREATED = "CREATED", "Created"
    OFFERED = "OFFERED", "Offered"
    ASSIGNED = "ASSIGNED", "Assigned"
    EN_ROUTE_PICKUP = "EN_ROUTE_PICKUP", "En route to pickup"
    ARRIVED_PICKUP = "ARRIVED_PICKUP", "Arrived at pickup"
    PICKED_UP = "PICKED_UP", "Picked up"
    ARRIVED_DROPOFF = "ARRIVED_DROPOFF", "Arrived at drop-off"
    DELIVERED = "DELIVERED", "Delivered"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"
    RETURNED = "RETURNED", "Returned"


S = OrderStatus
TERMINAL_STATUSES = frozenset({S.DELIVERED, S.CANCELLED, S.RETURNED})
# The goods are with the driver from pick-up on: such an order can no longer be cancelled,
# only delivered, failed or returned.
CANCELLABLE_STATUSES = [S.CREATED, S.OFFERED, S.ASSIGNED, S.EN_ROUTE_PICKUP, S.ARRIVED_PICKUP]
RELEASABLE_STATUSES = [S.OFFERED, S.ASSIGNED, S.EN_ROUTE_PICKUP, S.ARRIVED_PICKUP]
DRIVER_HOLDS_STATUSES = [S.ASSIGNED, S.EN_ROUTE_PICKUP, S.ARRIVED_PICKUP, S.PICKED_UP, S.ARRIVED_DROPOFF]
# A delivered order keeps the driver who delivered it: the table refuses one without.
DRIVER_REQUIRED_STATUSES = [*DRIVER_HOLDS_STATUSES, S.DELIVERED]


# A stop's geofence radius may be set per order within these bounds (metres).
GEOFENCE_MIN_M, GEOFENCE_MAX_M = 10, 1000


class Priority(models.IntegerChoices):
    LOW = 0, "Low"
    NORMAL = 1, "Normal"
    HIGH = 2, "High"
    URGENT = 3, "Urgent"


class Order(ConcurrentTransitionMixin, models.Model):
    """A parcel to carry from a pickup to a drop-off inside two half-open time windows.

    The status moves only through the transitions below, called by dispatch.services.orders,
    which also writes the OrderTransition row and the domain event. The mixin makes a save
    fail if another transaction moved the status first, so two transitions never both apply.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="orders")
    # The retailer the order is carried for (a 3PL's client); none for an organisation's own.
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    external_ref = models.CharField(max_length=100)
    status = FSMField(max_length=16, choices=OrderStatus.choices, default=S.CREATED, protected=True)
    hub = models.ForeignKey(Hub, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")

    pickup_address = models.CharField(max_length=300)
    pickup_location = models.PointField(geography=True, srid=4326)
    pickup_window_start = models.DateTimeField()
    pickup_window_end = models.DateTimeField()
    dropoff_address = models.CharField(max_length=300)
    dropoff_location = models.PointField(geography=True, srid=4326)
    dropoff_window_start = models.DateTimeField()
    dropoff_window_end = models.DateTimeField()
    # How close a GPS fix must be to count as at the stop (dispatch.engine.geofence); none: 50 m.
    pickup_geofence_m = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(GEOFENCE_MIN_M), MaxValueValidator(GEOFENCE_MAX_M)],
    )
    dropoff_geofence_m = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(GEOFENCE_MIN_M), MaxValueValidator(GEOFENCE_MAX_M)],
    )

    weight_kg = models.DecimalField(
        max_digits=8, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    volume_litres = models.DecimalField(
        max_digits=9, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, validators=[RegexValidator(r"^[A-Z]{3}$", "ISO 4217 code.")])
    declared_value_minor = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    tip_minor = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    priority = models.PositiveSmallIntegerField(
        choices=Priority.choices, default=Priority.NORMAL, validators=[MaxValueValidator(3)]
    )
    recipient_name = models.CharField(max_length=200)
    recipient_phone = models.CharField(max_length=20, blank=True, validators=[e164_phone])
    recipient_email = models.EmailField(blank=True)
    notes = models.TextField(blank=True, max_length=2000)
    # Set when the order needs a dispatcher's decision (its driver was suspended while carrying
    # it, say); cleared when the order leaves that driver or ends.
    attention_reason = models.TextField(blank=True)
    attention_raised_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = History(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "external_ref"], name="order_ref_unique_per_org"),
            models.CheckConstraint(
                name="order_pickup_window_ordered",
                condition=Q(pickup_window_end__gt=F("pickup_window_start")),
            ),
            models.CheckConstraint(
                name="order_dropoff_window_ordered",
                condition=Q(dropoff_window_end__gt=F("dropoff_window_start")),
            ),
            models.CheckConstraint(
                name="order_dropoff_closes_after_pickup_opens",
                condition=Q(dropoff_window_end__gt=F("pickup_window_start")),
            ),
            models.CheckConstraint(name="order_weight_non_negative", condition=Q(weight_kg__gte=0)),
            models.CheckConstraint(name="order_volume_non_negative", condition=Q(volume_litres__gte=0)),
            models.CheckConstraint(name="order_value_non_negative", condition=Q(declared_value_minor__gte=0)),
            models.CheckConstraint(name="order_tip_non_negative", condition=Q(tip_minor__gte=0)),
            models.CheckConstraint(name="order_priority_range", condition=Q(priority__lte=3)),
            *(
                models.CheckConstraint(
                    name=f"order_{stop}_geofence_range",
                    condition=Q(**{f"{stop}_geofence_m__isnull": True})
                    | Q(
                        **{
                            f"{stop}_geofence_m__gte": GEOFENCE_MIN_M,
                            f"{stop}_geofence_m__lte": GEOFENCE_MAX_M,
                        }
                    ),
                )
                for stop in ("pickup", "dropoff")
            ),
            models.CheckConstraint(
                name="order_driver_set_while_driver_holds_it",
                condition=Q(driver__isnull=False) | ~Q(status__in=DRIVER_REQUIRED_STATUSES),
            ),
        ]
        indexes = [
            models.Index(fields=["organisation", "status", "-created_at"]),
            models.Index(fields=["organisation", "client", "-created_at"]),
            models.Index(fields=["driver", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.external_ref} ({self.status})"

    # --- transitions: called only by dispatch.services.orders.transition_order -------------

    @transition(field=status, source=S.CREATED, target=S.OFFERED)
    def offer(self) -> None:
        """Offered to one or more drivers; still nobody's."""

    @transition(field=status, source=[S.CREATED, S.OFFERED], target=S.ASSIGNED)
    def assign(self, *, driver: Driver) -> None:
        self.driver = driver

    @transition(field=status, source=RELEASABLE_STATUSES, target=S.CREATED)
    def release(self) -> None:
        """Back to the pool: an offer lapsed, or the order was taken away from its driver."""
        self.driver = None

    @transition(field=status, source=S.ASSIGNED, target=S.EN_ROUTE_PICKUP)
    def start_pickup(self) -> None:
        pass

    @transition(field=status, source=S.EN_ROUTE_PICKUP, target=S.ARRIVED_PICKUP)
    def arrive_pickup(self) -> None:
        pass

    @transition(field=status, source=S.ARRIVED_PICKUP, target=S.PICKED_UP)
    def pick_up(self) -> None:
        pass

    @transition(field=status, source=S.PICKED_UP, target=S.ARRIVED_DROPOFF)
    def arrive_dropoff(self) -> None:
        pass

    @transition(field=status, source=S.ARRIVED_DROPOFF, target=S.DELIVERED)
    def deliver(self) -> None:
        """Needs a ProofOfDelivery; the service checks it."""

    @transition(
        field=status,
        source=[S.ASSIGNED, S.EN_ROUTE_PICKUP, S.ARRIVED_PICKUP, S.PICKED_UP, S.ARRIVED_DROPOFF],
        target=S.FAILED,
    )
    def fail(self) -> None:
        pass

    @transition(field=status, source=CANCELLABLE_STATUSES, target=S.CANCELLED)
    def cancel(self) -> None:
        pass

    @transition(field=status, source=[S.PICKED_UP, S.ARRIVED_DROPOFF, S.FAILED], target=S.RETURNED)
    def return_to_sender(self) -> None:
        pass


class OrderTransition(ActorFields):
    """The history of an order: every status change, by whom or what, and why."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="transitions")
    action = models.CharField(max_length=32)
    from_status = models.CharField(max_length=16, choices=OrderStatus.choices)
    to_status = models.CharField(max_length=16, choices=OrderStatus.choices)
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True)
    is_override = models.BooleanField(default=False)
    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status} -> {self.to_status}"


class OfferStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    ACCEPTED = "ACCEPTED", "Accepted"
    DECLINED = "DECLINED", "Declined"
    EXPIRED = "EXPIRED", "Expired"
    WITHDRAWN = "WITHDRAWN", "Withdrawn"


class Offer(ConcurrentTransitionMixin, models.Model):
    """Work offered to one driver: one order or a batch, until it expires or they answer.

    The status moves only through the transitions below, called by dispatch.services.offers
    (which writes the history row and the `offer.*` event); the mixin makes a save fail if
    another transaction answered the offer first. A declined or expired offer stays, so a
    later round can leave that driver out for its orders (selectors.drivers_excluded_for).
    """

    Status = OfferStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="offers")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="offers")
    orders = models.ManyToManyField(Order, related_name="offers")
    status = FSMField(max_length=16, choices=OfferStatus.choices, default=OfferStatus.PENDING, protected=True)
    # What the driver is paid on top for this work, as offered and accepted: settlement reads it.
    incentive_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    attempt = models.PositiveSmallIntegerField(default=1)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    # Why the driver declined or why dispatch withdrew it, as they said it.
    reason = models.CharField(max_length=500, blank=True)
    # Why dispatch chose this driver for this work: the round's cost terms as plain sentences
    # (engine CostTerms.lines()), for the driver and the dispatcher to read.
    explanation = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = History()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(name="offer_incentive_non_negative", condition=Q(incentive_minor__gte=0)),
            models.CheckConstraint(
                name="offer_expires_after_creation", condition=Q(expires_at__gt=F("created_at"))
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["driver", "status"]),
        ]

    def __str__(self) -> str:
        return f"Offer {self.id} to {self.driver_id} ({self.status})"

    # --- transitions: called only by dispatch.services.offers -----------------------------

    @transition(field=status, source=OfferStatus.PENDING, target=OfferStatus.ACCEPTED)
    def accept(self) -> None:
        pass

    @transition(field=status, source=OfferStatus.PENDING, target=OfferStatus.DECLINED)
    def decline(self) -> None:
        pass

    @transition(field=status, source=OfferStatus.PENDING, target=OfferStatus.EXPIRED)
    def expire(self) -> None:
        pass

    @transition(field=status, source=OfferStatus.PENDING, target=OfferStatus.WITHDRAWN)
    def withdraw(self) -> None:
        """Taken back: another driver took the work, or this driver can no longer take it."""


class Route(models.Model):
    """A driver's plan: the stops they make, in order, with when they are expected at each.

    One ACTIVE route per driver; dispatch.services.routes keeps it in step with the driver's
    orders (stops added on assignment, completed as the order moves, removed when it leaves
    them) and re-sequences it, each change under a lock on this row."""

    class Status(models.TextChoices):
        PLANNED = "PLANNED", "Planned"
        ACTIVE = "ACTIVE", "Active"
        COMPLETED = "COMPLETED", "Completed"
        ABANDONED = "ABANDONED", "Abandoned"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="routes")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="routes")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    # When the ETAs were last worked out, and how the stops' order was last chosen (the
    # sequencing candidate that won, or "insertion" for the matching engine's plan).
    etas_at = models.DateTimeField(null=True, blank=True)
    sequenced_by = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["driver"], condition=Q(status="ACTIVE"), name="one_active_route_per_driver"
            )
        ]

    def __str__(self) -> str:
        return f"Route {self.id} of {self.driver_id} ({self.status})"


class Stop(models.Model):
    """One stop of a route: its order's pickup or drop-off, with its window and service time,
    the live ETA (`planned_arrival_at`), the ETA last announced to the order's owner, and the
    SLA watch's prediction (`predicted_late_s`; `at_risk_since` while the alert is raised)."""

    class Kind(models.TextChoices):
        PICKUP = "pickup", "Pickup"
        DROPOFF = "dropoff", "Drop-off"

    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="stops")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="stops")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    sequence = models.PositiveSmallIntegerField()
    location = models.PointField(geography=True, srid=4326)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    service_s = models.PositiveIntegerField(default=0)
    planned_arrival_at = models.DateTimeField(null=True, blank=True)
    announced_arrival_at = models.DateTimeField(null=True, blank=True)
    predicted_late_s = models.IntegerField(default=0)
    at_risk_since = models.DateTimeField(null=True, blank=True)
    arrived_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["route", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["route", "sequence"], name="stop_sequence_unique_per_route"),
            models.UniqueConstraint(
                fields=["route", "order", "kind"], name="stop_kind_once_per_order_per_route"
            ),
            models.CheckConstraint(name="stop_window_ordered", condition=Q(window_end__gt=F("window_start"))),
        ]
        indexes = [models.Index(fields=["route", "completed_at"])]

    def __str__(self) -> str:
        return f"{self.kind} of {self.order_id} (#{self.sequence})"


class GeofenceVisit(models.Model):
    """A driver's visit to one stop of an order as their pings showed it (the geofence events):
    dwelling at it, arrived (entered_at), left (exited_at), with the pings that decided.

    `phase` and the run fields are the state of dispatch.engine.geofence for this stop, kept
    between ping requests; a LEFT visit is closed and a later return opens a new one."""

    Kind = Stop.Kind

    class Phase(models.TextChoices):
        OUTSIDE = "OUTSIDE", "Outside"
        DWELLING = "DWELLING", "Dwelling"
        INSIDE = "INSIDE", "Inside"
        LEFT = "LEFT", "Left"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="geofence_visits")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="geofence_visits")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    radius_m = models.FloatField()
    exit_radius_m = models.FloatField()
    phase = models.CharField(max_length=8, choices=Phase.choices, default=Phase.OUTSIDE)
    last_ping_at = models.DateTimeField(null=True, blank=True)
    run_count = models.PositiveSmallIntegerField(default=0)
    run_started_at = models.DateTimeField(null=True, blank=True)
    entered_at = models.DateTimeField(null=True, blank=True)
    exited_at = models.DateTimeField(null=True, blank=True)
    # The pings that confirmed the arrival and the departure, as the geofence read them.
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["driver", "order", "kind"],
                condition=~Q(phase="LEFT"),
                name="one_open_geofence_visit_per_stop",
            ),
            models.CheckConstraint(
                name="geofence_visit_exit_beyond_entry", condition=Q(exit_radius_m__gt=F("radius_m"))
            ),
        ]
        indexes = [models.Index(fields=["driver", "phase"])]

    def __str__(self) -> str:
        return f"{self.driver_id} at {self.kind} of {self.order_id}: {self.phase}"


class ProofOfDelivery(models.Model):
    """What the driver captured at the door: a photo and/or signature, where and when."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="proof_of_delivery")
    driver = models.ForeignKey(Driver, on_delete=models.PROTECT, related_name="proofs_of_delivery")
    photo = models.ImageField(upload_to="pod/photos/%Y/%m/", blank=True)
    signature = models.ImageField(upload_to="pod/signatures/%Y/%m/", blank=True)
    recipient_name = models.CharField(max_length=200, blank=True)
    location = models.PointField(geography=True, srid=4326)
    accuracy_m = models.FloatField(null=True, blank=True)
    captured_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="pod_has_evidence",
                condition=~Q(photo="") | ~Q(signature=""),
            )
        ]


OFFER_TTL_MIN_SECONDS, OFFER_TTL_MAX_SECONDS = 10, 3600


class DispatchSettings(models.Model):
    """How an organisation's dispatch rounds decide (`rules`, validated by the engine's
    parse_rules) and how long a driver has to answer an offer. Absent: the defaults.

    Its row is also the round's lock: one round at a time per organisation."""

    organisation = models.OneToOneField(
        Organisation, on_delete=models.CASCADE, primary_key=True, related_name="dispatch_settings"
    )
    rules = models.JSONField(default=dict, blank=True)
    offer_ttl_seconds = models.PositiveIntegerField(
        default=45,
        validators=[MinValueValidator(OFFER_TTL_MIN_SECONDS), MaxValueValidator(OFFER_TTL_MAX_SECONDS)],
    )
    # The SLA watch may take an order that will be late away from its driver (before pickup)
    # and put it back in the pool for the next round. Off unless the organisation turns it on.
    reassign_at_risk = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)
    history = History(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = "dispatch settings"
        verbose_name_plural = "dispatch settings"

    def __str__(self) -> str:
        return f"Dispatch settings of {self.organisation}"


class SuggestionStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    ACCEPTED = "ACCEPTED", "Accepted"
    DISMISSED = "DISMISSED", "Dismissed"
    EXPIRED = "EXPIRED", "Expired"


class RepositionSuggestion(ConcurrentTransitionMixin, models.Model):
    """Predictive dispatch's advice to an idle driver: move toward a cell where more orders are
    expected than drivers are near. A decision about a driver, so it keeps its inputs (the
    forecast's slot and basis, the supply it saw) and its reason in plain words.

    The status moves only through dispatch.services.repositioning (an `reposition.*` event
    each); one pending suggestion per driver at a time.
    """

    Status = SuggestionStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="reposition_suggestions"
    )
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="reposition_suggestions")
    status = FSMField(
        max_length=16, choices=SuggestionStatus.choices, default=SuggestionStatus.PENDING, protected=True
    )
    cell = models.CharField(max_length=16)  # H3 index (hex) of the target
    target = models.PointField(geography=True, srid=4326)  # the cell's centre
    distance_m = models.PositiveIntegerField()
    expected_orders = models.FloatField()  # near the target in the forecast slot
    drivers_near = models.FloatField()  # free near the target when suggested
    slot_start = models.DateTimeField()
    slot_end = models.DateTimeField()
    reason = models.TextField()  # why, in words, for the driver
    inputs = models.JSONField(default=dict, blank=True)  # what the decision was made from
    incentive_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["driver"], condition=Q(status="PENDING"), name="one_pending_suggestion_per_driver"
            ),
            models.CheckConstraint(
                name="suggestion_incentive_non_negative", condition=Q(incentive_minor__gte=0)
            ),
            models.CheckConstraint(
                name="suggestion_expires_after_creation", condition=Q(expires_at__gt=F("created_at"))
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"]), models.Index(fields=["driver", "status"])]

    def __str__(self) -> str:
        return f"Reposition {self.id} for {self.driver_id} ({self.status})"

    # --- transitions: called only by dispatch.services.repositioning --------------------------

    @transition(field=status, source=SuggestionStatus.PENDING, target=SuggestionStatus.ACCEPTED)
    def accept(self) -> None:
        pass

    @transition(field=status, source=SuggestionStatus.PENDING, target=SuggestionStatus.DISMISSED)
    def dismiss(self) -> None:
        pass

    @transition(field=status, source=SuggestionStatus.PENDING, target=SuggestionStatus.EXPIRED)
    def expire(self) -> None:
        pass


class TrafficKind(models.TextChoices):
    SPEED = "speed", "Speed factor"
    INCIDENT = "incident", "Incident"


class TrafficRecord(models.Model):
    """A speed factor on one road (OSM way) or one H3 cell, valid over [valid_from, valid_until).

    factor multiplies the free-flow speed (0.5: half speed; 0: closed). An area given as a
    polygon or a coarser cell is stored as one row per cell of the traffic resolution, all under
    the record's external_id. A feed's or caller's record replaces the rows it sent before under
    the same (source, external_id). Speed records are blended with the speeds learnt from our
    own drivers; incidents are not (the slower wins).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="traffic_records")
    source = models.CharField(max_length=64)
    external_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=TrafficKind.choices)
    way_id = models.BigIntegerField(null=True, blank=True)
    h3_cell = models.CharField(max_length=16, blank=True)
    factor = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "valid_until", "valid_from"])]
        constraints = [
            models.CheckConstraint(
                name="traffic_one_target",
                condition=(Q(way_id__isnull=False) & Q(h3_cell=""))
                | (Q(way_id__isnull=True) & ~Q(h3_cell="")),
            ),
            models.CheckConstraint(
                name="traffic_factor_range", condition=Q(factor__gte=0) & Q(factor__lte=2)
            ),
            models.CheckConstraint(name="traffic_window_order", condition=Q(valid_until__gt=F("valid_from"))),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.way_id or self.h3_cell} x{self.factor}"


class LearnedCellSpeed(models.Model):
    """Floating car data: the speed our own drivers made in one H3 cell over a window, from
    consecutive pings, as a factor of their vehicles' free-flow speed (the samples' median)."""

    id = models.BigAutoField(primary_key=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="learnt_speeds")
    h3_cell = models.CharField(max_length=16)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    samples = models.PositiveIntegerField()
    median_speed_mps = models.FloatField()
    factor = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["organisation", "window_end"])]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "h3_cell", "window_end"], name="one_learnt_speed_per_cell_window"
            ),
            models.CheckConstraint(name="learnt_factor_positive", condition=Q(factor__gt=0)),
        ]

    def __str__(self) -> str:
        return f"{self.h3_cell} x{self.factor:.2f} ({self.samples} samples)"
