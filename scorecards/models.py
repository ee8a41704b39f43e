"""What a driver's scorecard is made of: one row per fact (a delivery's outcome, an answered
offer, a stop's service time, a rating, a driver-caused cancellation), daily buckets that sum
them per driver and day, and the scorecard with its rolling window sums, kept up to date as
each fact arrives (scorecards.services), with a daily snapshot for the trend.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from core.history import History
from dispatch.models import GeofenceVisit, Offer, Order
from fleet.models import Driver
from identity.models import Client, Organisation


class Outcome(models.TextChoices):
    ON_TIME = "ON_TIME", "On time"
    LATE = "LATE", "Late"
    FAILED = "FAILED", "Failed"


class ExcuseCause(models.TextChoices):
    NONE = "", "Not excused"
    FOOD_NOT_READY = "FOOD_NOT_READY", "The order was not ready at the pickup"
    TRAFFIC_INCIDENT = "TRAFFIC_INCIDENT", "A traffic incident on the route"
    ROUTE_RESEQUENCED = "ROUTE_RESEQUENCED", "The route was re-sequenced by the system"
    LATE_PICKUP_WINDOW = "LATE_PICKUP_WINDOW", "Assigned or ready too late to be on time"
    DISPATCHER_EXCUSED = "DISPATCHER_EXCUSED", "Excused by a dispatcher"


class DeliveryOutcome(models.Model):
    """How one order's delivery went for its driver: on time, late (by how much, and the cause
    when the driver did not cause it, with the evidence), or failed. One per order."""

    Outcome = Outcome
    ExcuseCause = ExcuseCause

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="delivery_outcomes")
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="delivery_outcome")
    # The order's client (a 3PL's retailer), copied so a client's view needs no join.
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    finished_at = models.DateTimeField()
    promised_by = models.DateTimeField()  # the drop-off window's end
    late_seconds = models.PositiveIntegerField(default=0)
    excused_cause = models.CharField(max_length=24, choices=ExcuseCause.choices, blank=True, default="")
    # What the excuse was decided from (and the checks that found nothing), for the driver and
    # a reviewer to read; a dispatcher's excuse holds who and why.
    excuse_inputs = models.JSONField(default=dict, blank=True)
    excused_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = History()

    class Meta:
        ordering = ["-finished_at", "-id"]
        constraints = [
            models.CheckConstraint(
                name="outcome_late_seconds_non_negative", condition=Q(late_seconds__gte=0)
            ),
            models.CheckConstraint(
                name="outcome_only_late_is_excused",
                condition=Q(excused_cause="") | Q(outcome=Outcome.LATE),
            ),
            models.CheckConstraint(
                name="outcome_late_has_seconds",
                condition=~Q(outcome=Outcome.LATE) | Q(late_seconds__gt=0),
            ),
        ]
        indexes = [
            models.Index(fields=["driver", "-finished_at", "-id"], name="outcome_driver_recent"),
            models.Index(fields=["organisation", "client", "-finished_at"], name="outcome_org_client_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.outcome}"

    @property
    def is_excused(self) -> bool:
        return bool(self.excused_cause)

    @property
    def counts_as_late(self) -> bool:
        """Late through the driver's own doing: late and not excused."""
        return self.outcome == Outcome.LATE and not self.excused_cause


class OfferAnswer(models.Model):
    """How a driver answered one offer: accepted, declined, or let it expire."""

    class Answer(models.TextChoices):
        ACCEPTED = "ACCEPTED", "Accepted"
        DECLINED = "DECLINED", "Declined"
        EXPIRED = "EXPIRED", "Expired"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="offer_answers")
    offer = models.OneToOneField(Offer, on_delete=models.CASCADE, related_name="answer")
    answer = models.CharField(max_length=8, choices=Answer.choices)
    answered_at = models.DateTimeField()

    class Meta:
        ordering = ["-answered_at", "-id"]
        indexes = [models.Index(fields=["driver", "-answered_at", "-id"], name="answer_driver_recent")]

    def __str__(self) -> str:
        return f"{self.driver_id}: {self.answer}"


class StopService(models.Model):
    """A driver's time at a stop, from the geofence's arrival to its departure (one visit)."""

    class Kind(models.TextChoices):
        PICKUP = "pickup", "Pickup"
        DROPOFF = "dropoff", "Drop-off"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="stop_services")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    visit = models.OneToOneField(GeofenceVisit, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    arrived_at = models.DateTimeField()
    departed_at = models.DateTimeField()
    service_s = models.PositiveIntegerField()

    class Meta:
        ordering = ["-departed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                name="stop_service_departed_after_arrival", condition=Q(departed_at__gte=F("arrived_at"))
            )
        ]
        indexes = [
            models.Index(fields=["driver", "-departed_at"], name="service_driver_recent"),
            models.Index(fields=["order", "kind"], name="service_order_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.order_id}: {self.service_s} s"


class Rating(models.Model):
    """The recipient's rating of a delivery (1-5 stars, an optional comment), one per order,
    given through the signed link in the order's details and its delivered webhook."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="ratings")
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="rating")
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stars = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.TextField(blank=True, max_length=500)
    rated_at = models.DateTimeField()

    class Meta:
        ordering = ["-rated_at", "-id"]
        constraints = [
            models.CheckConstraint(name="rating_stars_range", condition=Q(stars__gte=1) & Q(stars__lte=5)),
        ]
        indexes = [models.Index(fields=["driver", "-rated_at", "-id"], name="rating_driver_recent")]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.stars}*"


class DriverCancellation(models.Model):
    """A driver gave up an order they held (released or cancelled it themselves)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="cancellations")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    # The domain event it was read from: each is counted once.
    event_id = models.UUIDField(unique=True)
    cancelled_at = models.DateTimeField()
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-cancelled_at", "-id"]
        indexes = [models.Index(fields=["driver", "-cancelled_at"], name="cancel_driver_recent")]

    def __str__(self) -> str:
        return f"{self.driver_id} gave up {self.order_id}"


class StopResequence(models.Model):
    """The system moved a stop of a driver's route while re-sequencing it (the `route.resequenced`
    event): evidence for a lateness the driver did not cause."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=StopService.Kind.choices)
    resequenced_at = models.DateTimeField()
    from_position = models.PositiveSmallIntegerField()
    to_position = models.PositiveSmallIntegerField()
    eta_before = models.DateTimeField(null=True, blank=True)
    eta_after = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-resequenced_at", "-id"]
        indexes = [models.Index(fields=["order", "kind"], name="reseq_order_kind")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.order_id}: #{self.from_position} -> #{self.to_position}"


# The sums a scorecard is made of, per driver and day and over each window.
COUNTERS = (
    "offers_accepted",
    "offers_declined",
    "offers_expired",
    "deliveries_on_time",
    "deliveries_late",
    "deliveries_late_excused",
    "deliveries_failed",
    "cancellations",
    "rating_sum",
    "rating_count",
    "pickup_service_s",
    "pickup_visits",
    "dropoff_service_s",
    "dropoff_visits",
)


class DailyStats(models.Model):
    """One driver's facts on one UTC day, summed: the buckets the rolling windows add up."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="daily_stats")
    day = models.DateField()
    offers_accepted = models.PositiveIntegerField(default=0)
    offers_declined = models.PositiveIntegerField(default=0)
    offers_expired = models.PositiveIntegerField(default=0)
    deliveries_on_time = models.PositiveIntegerField(default=0)
    deliveries_late = models.PositiveIntegerField(default=0)
    deliveries_late_excused = models.PositiveIntegerField(default=0)
    deliveries_failed = models.PositiveIntegerField(default=0)
    cancellations = models.PositiveIntegerField(default=0)
    rating_sum = models.PositiveIntegerField(default=0)
    rating_count = models.PositiveIntegerField(default=0)
    pickup_service_s = models.PositiveBigIntegerField(default=0)
    pickup_visits = models.PositiveIntegerField(default=0)
    dropoff_service_s = models.PositiveBigIntegerField(default=0)
    dropoff_visits = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["driver", "day"]
        constraints = [
            models.UniqueConstraint(fields=["driver", "day"], name="one_daily_stats_per_driver_day")
        ]
        verbose_name_plural = "daily stats"

    def __str__(self) -> str:
        return f"{self.driver_id} on {self.day}"


class Scorecard(models.Model):
    """A driver's scorecard: the running sums of the 7- and 30-day windows (`sums`, each from
    `window_starts[...]` to today, UTC days), the last N orders' figures, and the performance
    score with what it was computed from. Updated under its row lock as each fact arrives."""

    driver = models.OneToOneField(
        Driver, on_delete=models.CASCADE, primary_key=True, related_name="scorecard"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    # {"7d": {counter: n}, "30d": {...}} and {"7d": "YYYY-MM-DD", "30d": ...}
    sums = models.JSONField(default=dict)
    window_starts = models.JSONField(default=dict)
    last_n = models.JSONField(default=dict)  # the last N orders' outcomes and ratings
    performance_score = models.FloatField(default=1.0)
    score_inputs = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["organisation", "driver"]
        indexes = [models.Index(fields=["organisation", "-performance_score"], name="scorecard_org_score")]

    def __str__(self) -> str:
        return f"Scorecard of {self.driver_id}"


class ScorecardSnapshot(models.Model):
    """A driver's scorecard as it stood at the end of a UTC day: the trend the charts draw."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="scorecard_snapshots")
    day = models.DateField()
    metrics = models.JSONField(default=dict)
    performance_score = models.FloatField()

    class Meta:
        ordering = ["driver", "day"]
        constraints = [models.UniqueConstraint(fields=["driver", "day"], name="one_snapshot_per_driver_day")]

    def __str__(self) -> str:
        return f"{self.driver_id} on {self.day}: {self.performance_score:.3f}"


DEFAULT_WEIGHTS = {"acceptance": 1.0, "on_time": 2.0, "rating": 1.0, "completion": 1.0}
DEFAULT_PRIOR_STRENGTH = 10
DEFAULT_LAST_N_ORDERS = 50


def default_weights() -> dict:
    return dict(DEFAULT_WEIGHTS)


class ScorecardSettings(models.Model):
    """An organisation's performance score: each metric's weight (scorecards.scoring), how much
    history outweighs the neutral prior, and how many orders "the last N" is."""

    organisation = models.OneToOneField(
        Organisation, on_delete=models.CASCADE, primary_key=True, related_name="scorecard_settings"
    )
    weights = models.JSONField(default=default_weights)
    prior_strength = models.PositiveIntegerField(
        default=DEFAULT_PRIOR_STRENGTH, validators=[MinValueValidator(0), MaxValueValidator(1000)]
    )
    last_n_orders = models.PositiveIntegerField(
        default=DEFAULT_LAST_N_ORDERS, validators=[MinValueValidator(1), MaxValueValidator(500)]
    )
    updated_at = models.DateTimeField(auto_now=True)
    history = History(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = "scorecard settings"
        verbose_name_plural = "scorecard settings"
        constraints = [
            models.CheckConstraint(
                name="scorecard_last_n_range", condition=Q(last_n_orders__gte=1) & Q(last_n_orders__lte=500)
            ),
            models.CheckConstraint(name="scorecard_prior_range", condition=Q(prior_strength__lte=1000)),
        ]

    def __str__(self) -> str:
        return f"Scorecard settings of {self.organisation}"
