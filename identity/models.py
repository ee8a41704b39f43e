"""Organisations (tenants), their clients, the people who sign in, and API keys.

An organisation runs one delivery network (a 3PL or a retailer). A 3PL's clients are the
retailers it delivers for: an order belongs to one client, and a user or an API key limited
to a client sees, changes and hears about only that client's orders.
"""

import uuid

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from core.history import History


class Organisation(models.Model):
    """A tenant: a 3PL or a retailer. Nothing crosses from one organisation to another."""

    class Kind(models.TextChoices):
        THREE_PL = "3pl", "Third-party logistics"
        RETAILER = "retailer", "Retailer"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.RETAILER)
    currency = models.CharField(
        max_length=3, default="EUR", validators=[RegexValidator(r"^[A-Z]{3}$", "ISO 4217 code.")]
    )
    timezone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)
    history = History()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Client(models.Model):
    """A retailer a 3PL delivers for. Drivers, hubs and zones stay the organisation's."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="clients")
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = History()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "slug"], name="client_slug_unique_per_org")
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ORG_ADMIN = "org_admin", "Organisation admin"
    DISPATCHER = "dispatcher", "Dispatcher"
    CLIENT_USER = "client_user", "Client user"
    DRIVER = "driver", "Driver"
    PLATFORM_STAFF = "platform_staff", "Platform staff"


ALL_SCOPES = (
    "orders:read",
    "orders:write",
    "drivers:read",
    "fleet:read",
    "fleet:write",
    "webhooks:manage",
    "clients:manage",
    "traffic:manage",
    "dispatch:read",
    "dispatch:write",
    # Discipline: read the rules and the review queue; change the rules; decide reviews.
    "discipline:read",
    "discipline:write",
    "discipline:review",
)
# What a caller limited to one client may hold: its own orders and webhooks, and the hubs and
# zones it ships from. The organisation's drivers and fleet settings are not the client's.
CLIENT_SCOPES = frozenset({"orders:read", "orders:write", "fleet:read", "webhooks:manage"})
ROLE_SCOPES = {
    Role.ORG_ADMIN: frozenset(ALL_SCOPES),
    Role.DISPATCHER: frozenset(
        {
            "orders:read",
            "orders:write",
            "drivers:read",
            "fleet:read",
            "dispatch:read",
            "discipline:read",
            "discipline:review",
        }
    ),
    Role.CLIENT_USER: frozenset({"orders:read", "orders:write", "fleet:read"}),
    # A driver reads only their own orders and their own driver record (selectors enforce it).
    Role.DRIVER: frozenset({"orders:read", "drivers:read"}),
    Role.PLATFORM_STAFF: frozenset(),
}


class FleetrootUserManager(UserManager):
    """`createsuperuser` makes platform staff: they belong to no organisation. Every user it
    makes has a role, organisation and client that agree (User.clean)."""

    def _create_user_object(self, username, email, password, **extra_fields):
        user = super()._create_user_object(username, email, password, **extra_fields)
        user.clean()
        return user

    def create_superuser(self, username, email=None, password=None, **extra_fields):
        extra_fields.setdefault("role", Role.PLATFORM_STAFF)
        extra_fields.setdefault("organisation", None)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person who signs in. Platform staff have no organisation and work in Django admin;
    a client user belongs to an organisation and one of its clients."""

    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.PROTECT, related_name="users")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.DISPATCHER)

    objects = FleetrootUserManager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="user_org_matches_role",
                condition=Q(role="platform_staff", organisation__isnull=True)
                | (~Q(role="platform_staff") & Q(organisation__isnull=False)),
            ),
            models.CheckConstraint(
                name="user_client_iff_client_role",
                condition=Q(role="client_user", client__isnull=False)
                | (~Q(role="client_user") & Q(client__isnull=True)),
            ),
        ]

    def clean(self) -> None:
        super().clean()
        if self.role == Role.PLATFORM_STAFF and self.organisation_id:
            raise ValidationError({"organisation": "Platform staff belong to no organisation."})
        if self.role != Role.PLATFORM_STAFF and not self.organisation_id:
            raise ValidationError({"organisation": "Choose the organisation this person works for."})
        if self.role == Role.CLIENT_USER and not self.client_id:
            raise ValidationError({"client": "A client user needs a client."})
        if self.role != Role.CLIENT_USER and self.client_id:
            raise ValidationError({"client": "Only a client user is limited to a client."})
        if self.client_id and self.client.organisation_id != self.organisation_id:
            raise ValidationError({"client": "The client belongs to another organisation."})

    @property
    def is_driver(self) -> bool:
        return self.role == Role.DRIVER

    @property
    def runs_dispatch(self) -> bool:
        """An organisation admin or dispatcher: sees the whole network (live map, all drivers)."""
        return self.organisation_id is not None and self.role in (Role.ORG_ADMIN, Role.DISPATCHER)

    @property
    def scopes(self) -> frozenset[str]:
        return ROLE_SCOPES[self.role]


class ApiKey(models.Model):
    """A secret an order management system authenticates with.

    Only a SHA-256 of the secret is stored (keys are 256-bit random, so a fast hash is safe);
    the full key is shown once, when it is created. `prefix` finds the row without the secret.
    A key limited to a client acts only on that client's orders.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="api_keys")
    client = models.ForeignKey(
        Client, null=True, blank=True, on_delete=models.PROTECT, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    rate_limit_per_minute = models.PositiveIntegerField(default=600)
    created_by = models.ForeignKey(
        "identity.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    history = History(excluded_fields=["last_used_at", "secret_hash"])

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(name="api_key_rate_positive", condition=Q(rate_limit_per_minute__gt=0))
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def clean(self) -> None:
        unknown = set(self.scopes) - set(ALL_SCOPES)
        if unknown:
            raise ValidationError({"scopes": f"Unknown scopes: {', '.join(sorted(unknown))}."})
        if self.client_id:
            if self.client.organisation_id != self.organisation_id:
                raise ValidationError({"client": "The client belongs to another organisation."})
            beyond = set(self.scopes) - CLIENT_SCOPES
            if beyond:
                raise ValidationError(
                    {
                        "scopes": f"A key limited to a client cannot hold {', '.join(sorted(beyond))}; "
                        f"it may hold {', '.join(sorted(CLIENT_SCOPES))}."
                    }
                )


class DeviceToken(models.Model):
    """A driver's phone signing in to the driver API: `Authorization: Device frd_<prefix>_<secret>`.

    Stored like an API key (prefix to find the row, SHA-256 of the random secret); shown once.
    One per device, so losing a phone revokes that phone only. It acts as its user, and only
    while that user is an active driver.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="device_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    history = History(excluded_fields=["last_used_at", "secret_hash"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
