"""An organisation's fleet: hubs, zones, drivers, their vehicles and location pings."""

import re
import uuid
from decimal import Decimal

from django.contrib.gis.db import models
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db.models import Q
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.history import History
from core.models import ActorFields
from core.validators import e164_phone
from identity.models import Organisation, User


class Hub(models.Model):
    """A depot, store or dark store where orders are picked up."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="hubs")
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300)
    location = models.PointField(geography=True, srid=4326)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = History()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="hub_name_unique_per_org")
        ]

    def __str__(self) -> str:
        return self.name


class Zone(models.Model):
    """A service area: a polygon and the H3 cells that cover it (for demand and matching)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="zones")
    name = models.CharField(max_length=200)
    area = models.MultiPolygonField(srid=4326)
    h3_resolution = models.PositiveSmallIntegerField(default=9, validators=[MinValueValidator(0)])
    h3_cells = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = History()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="zone_name_unique_per_org"),
            models.CheckConstraint(name="zone_h3_resolution_range", condition=Q(h3_resolution__lte=15)),
        ]

    def __str__(self) -> str:
        return self.name


class DriverStatus(models.TextChoices):
    APPLICANT = "APPLICANT", "Applicant"
    ACTIVE = "ACTIVE", "Active"
    SUSPENDED = "SUSPENDED", "Suspended"
    ACCESS_DENIED = "ACCESS_DENIED", "Access denied"
    OFFBOARDED = "OFFBOARDED", "Offboarded"


class Driver(ConcurrentTransitionMixin, models.Model):
    """A courier, from the organisation's own fleet or a gig worker.

    `status` is what the driver may do (only ACTIVE drivers get work); `is_online` is whether
    they are working right now. Status changes go through fleet.services, which records why.
    """

    class FleetType(models.TextChoices):
        OWNED = "owned", "Owned fleet"
        GIG = "gig", "Gig"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="drivers")
    user = models.OneToOneField(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="driver")
    name = models.CharField(max_length=200)
    phone = models.CharField(max_length=20, validators=[e164_phone])
    email = models.EmailField(blank=True)
    fleet_type = models.CharField(max_length=8, choices=FleetType.choices, default=FleetType.GIG)
    status = FSMField(
        max_length=16, choices=DriverStatus.choices, default=DriverStatus.APPLICANT, protected=True
    )
    hub = models.ForeignKey(Hub, null=True, blank=True, on_delete=models.SET_NULL, related_name="drivers")
    home_zone = models.ForeignKey(
        Zone, null=True, blank=True, on_delete=models.SET_NULL, related_name="home_drivers"
    )
    preferred_zones = models.ManyToManyField(Zone, blank=True, related_name="preferring_drivers")
    is_online = models.BooleanField(default=False)
    last_location = models.PointField(geography=True, srid=4326, null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # The scorecards' composite (0..1, higher is better; 1.0 until there is history), which
    # matching reads; written only by set_performance_score.
    performance_score = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = History(excluded_fields=["last_location", "last_seen_at", "performance_score", "updated_at"])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "phone"], name="driver_phone_unique_per_org"),
            models.CheckConstraint(
                name="driver_online_only_when_active",
                condition=Q(is_online=False) | Q(status="ACTIVE"),
            ),
            models.CheckConstraint(
                name="driver_performance_score_range",
                condition=Q(performance_score__gte=0) & Q(performance_score__lte=1),
            ),
        ]
        indexes = [models.Index(fields=["organisation", "status", "is_online"])]

    def __str__(self) -> str:
        return self.name

    @transition(
        field=status, source=[DriverStatus.APPLICANT, DriverStatus.ACCESS_DENIED], target=DriverStatus.ACTIVE
    )
    def approve(self) -> None:
        """Onboarding passed (or a human overrode a denial)."""

    @transition(field=status, source=DriverStatus.APPLICANT, target=DriverStatus.ACCESS_DENIED)
    def deny_access(self) -> None:
        self.is_online = False

    @transition(field=status, source=DriverStatus.ACTIVE, target=DriverStatus.SUSPENDED)
    def suspend(self) -> None:
        self.is_online = False

    @transition(field=status, source=DriverStatus.SUSPENDED, target=DriverStatus.ACTIVE)
    def reinstate(self) -> None:
        """An appeal or a review lifted the suspension."""

    @transition(
        field=status,
        source=[
            DriverStatus.APPLICANT,
            DriverStatus.ACTIVE,
            DriverStatus.SUSPENDED,
            DriverStatus.ACCESS_DENIED,
        ],
        target=DriverStatus.OFFBOARDED,
    )
    def offboard(self) -> None:
        self.is_online = False


class DriverStatusChange(ActorFields):
    """Why a driver's status changed: the decision, its inputs and a reason they can read."""

    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16, choices=DriverStatus.choices)
    to_status = models.CharField(max_length=16, choices=DriverStatus.choices)
    reason = models.TextField()
    inputs = models.JSONField(default=dict, blank=True)
    is_override = models.BooleanField(default=False)
    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"{self.driver}: {self.from_status} -> {self.to_status}"


VEHICLE_DEFAULT_CAPACITY = {
    # type: (kilograms, litres): what a typical courier vehicle of that type carries.
    "bicycle": (Decimal("15"), 40),
    "cargo_bike": (Decimal("100"), 250),
    "scooter": (Decimal("25"), 60),
    "motorcycle": (Decimal("40"), 90),
    "car": (Decimal("300"), 400),
    "van": (Decimal("1000"), 6000),
    "truck": (Decimal("3500"), 20000),
}
VIN_PATTERN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")


class Vehicle(models.Model):
    class Type(models.TextChoices):
        BICYCLE = "bicycle", "Bicycle"
        CARGO_BIKE = "cargo_bike", "Cargo bike"
        SCOOTER = "scooter", "Scooter"
        MOTORCYCLE = "motorcycle", "Motorcycle"
        CAR = "car", "Car"
        VAN = "van", "Van"
        TRUCK = "truck", "Truck"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="vehicles")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="vehicles")
    type = models.CharField(max_length=16, choices=Type.choices)
    capacity_kg = models.DecimalField(max_digits=8, decimal_places=2)
    capacity_litres = models.PositiveIntegerField()
    plate = models.CharField(max_length=16, blank=True)
    vin = models.CharField(
        max_length=17, blank=True, validators=[RegexValidator(VIN_PATTERN, "17 characters, no I, O or Q.")]
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = History()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["driver"], condition=Q(is_active=True), name="one_active_vehicle_per_driver"
            ),
            models.UniqueConstraint(
                fields=["organisation", "plate"], condition=~Q(plate=""), name="plate_unique_per_org"
            ),
            models.CheckConstraint(name="vehicle_capacity_kg_positive", condition=Q(capacity_kg__gt=0)),
            models.CheckConstraint(
                name="vehicle_capacity_litres_positive", condition=Q(capacity_litres__gt=0)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} {self.plate}".strip()

    def clean(self) -> None:
        motorised = self.type not in (self.Type.BICYCLE, self.Type.CARGO_BIKE)
        if motorised and not self.plate:
            raise ValidationError({"plate": "A motorised vehicle needs a plate."})
        if self.driver_id and self.organisation_id and self.driver.organisation_id != self.organisation_id:
            raise ValidationError({"driver": "The driver belongs to another organisation."})


class LocationPing(models.Model):
    """One GPS fix from a driver's phone. recorded_at is the phone's clock, received_at ours."""

    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="pings")
    location = models.PointField(geography=True, srid=4326)
    accuracy_m = models.FloatField(null=True, blank=True)
    speed_mps = models.FloatField(null=True, blank=True)
    heading_deg = models.FloatField(null=True, blank=True)
    recorded_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-recorded_at"]
        indexes = [models.Index(fields=["driver", "-recorded_at"])]
        constraints = [
            models.CheckConstraint(
                name="ping_accuracy_non_negative", condition=Q(accuracy_m__gte=0) | Q(accuracy_m__isnull=True)
            ),
            models.CheckConstraint(
                name="ping_speed_non_negative", condition=Q(speed_mps__gte=0) | Q(speed_mps__isnull=True)
            ),
            models.CheckConstraint(
                name="ping_heading_range",
                condition=(Q(heading_deg__gte=0) & Q(heading_deg__lt=360)) | Q(heading_deg__isnull=True),
            ),
            models.UniqueConstraint(fields=["driver", "recorded_at"], name="one_ping_per_driver_instant"),
        ]
