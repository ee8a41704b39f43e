"""Writes for identity and access: organisations, clients, users, API keys and device tokens."""

import secrets
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.actors import Actor
from core.db import lock
from core.history import attribute_change
from identity.authentication import DEVICE_TOKEN_PREFIX, KEY_PREFIX, hash_secret
from identity.models import ALL_SCOPES, CLIENT_SCOPES, ApiKey, Client, DeviceToken, Organisation, Role, User


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    plaintext: str  # shown once; never stored


@transaction.atomic
def create_api_key(
    *,
    organisation: Organisation,
    name: str,
    scopes: list[str] | None = None,
    rate_limit_per_minute: int | None = None,
    created_by=None,
    client: Client | None = None,
) -> IssuedApiKey:
    """A new key; by default it holds every scope its reach allows (a client's key: the client's)."""
    if scopes is None:
        scopes = sorted(CLIENT_SCOPES) if client is not None else list(ALL_SCOPES)
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey(
        organisation=organisation,
        client=client,
        name=name,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        scopes=sorted(set(scopes)),
        rate_limit_per_minute=rate_limit_per_minute or settings.API_KEY_DEFAULT_RATE_PER_MINUTE,
        created_by=created_by,
    )
    api_key.full_clean()
    api_key.save()
    return IssuedApiKey(api_key=api_key, plaintext=f"{KEY_PREFIX}{prefix}_{secret}")


@transaction.atomic
def update_api_key(*, api_key: ApiKey, name: str, scopes: list[str], rate_limit_per_minute: int) -> ApiKey:
    """Rename a key or change what it may do; its owner and secret never change."""
    api_key.name = name
    api_key.scopes = sorted(set(scopes))
    api_key.rate_limit_per_minute = rate_limit_per_minute
    api_key.full_clean()
    api_key.save(update_fields=["name", "scopes", "rate_limit_per_minute"])
    return api_key


@transaction.atomic
def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def _refuse_fixed(changes: dict, fixed: tuple[str, ...], what: str) -> None:
    """Who a row belongs to and the slug others refer to it by never change once it exists."""
    for name in fixed:
        if name in changes:
            raise ValidationError({name: f"A {what}'s {name} is fixed once it is created."})


def _save_slugged(instance: Organisation | Client) -> None:
    """Save a checked row, naming `slug` when a concurrent save took it first."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        raise ValidationError(
            {"slug": f"A {instance._meta.verbose_name} with this slug already exists."}
        ) from exc


ORGANISATION_FIXED_FIELDS = ("slug",)


def check_organisation(organisation: Organisation) -> None:
    """Everything an organisation's save checks, without saving: a free slug, an ISO 4217
    currency (the model's validator) and a known time zone."""
    taken = Organisation.objects.filter(slug=organisation.slug).exclude(pk=organisation.pk)
    if taken.exists():
        raise ValidationError({"slug": "An organisation with this slug already exists."})
    organisation.full_clean(validate_unique=False)
    if organisation.timezone not in zoneinfo.available_timezones():
        raise ValidationError({"timezone": "An IANA time zone, e.g. Europe/Helsinki."})


@transaction.atomic
def create_organisation(
    *,
    slug: str,
    name: str,
    kind: str = Organisation.Kind.RETAILER,
    currency: str = "EUR",
    timezone: str = "UTC",
) -> Organisation:
    """A new tenant; its slug is unique and, once created, fixed."""
    organisation = Organisation(slug=slug, name=name, kind=kind, currency=currency, timezone=timezone)
    check_organisation(organisation)
    _save_slugged(organisation)
    return organisation


@transaction.atomic
def update_organisation(*, organisation: Organisation, **changes) -> Organisation:
    """Rename an organisation or change its kind, currency or time zone; never its slug."""
    _refuse_fixed(changes, ORGANISATION_FIXED_FIELDS, "organisation")
    for name, value in changes.items():
        setattr(organisation, name, value)
    check_organisation(organisation)
    organisation.save(update_fields=[*changes])
    return organisation


CLIENT_FIXED_FIELDS = ("organisation", "slug")


def check_client(client: Client) -> None:
    """Everything a client's save checks, without saving: its fields are valid and its slug
    is free in its organisation."""
    client.full_clean(validate_constraints=False)
    taken = Client.objects.filter(organisation=client.organisation_id, slug=client.slug).exclude(pk=client.pk)
    if taken.exists():
        raise ValidationError({"slug": "A client with this slug already exists."})


@transaction.atomic
def create_client(*, organisation: Organisation, slug: str, name: str, is_active: bool = True) -> Client:
    """A retailer the organisation delivers for; its slug is unique in the organisation."""
    client = Client(organisation=organisation, slug=slug, name=name, is_active=is_active)
    check_client(client)
    _save_slugged(client)
    return client


@transaction.atomic
def update_client(*, client: Client, **changes) -> Client:
    """Rename a client or pause it (a paused client's orders are refused); its organisation
    and slug stay."""
    _refuse_fixed(changes, CLIENT_FIXED_FIELDS, "client")
    for name, value in changes.items():
        setattr(client, name, value)
    check_client(client)
    client.save(update_fields=[*changes])
    return client


@transaction.atomic
def save_user(*, user: User) -> User:
    """Save a user edited field by field (the admin): their role, organisation and client must
    agree (User.clean), as in `create_user` and `createsuperuser`."""
    user.clean()
    user.save()
    return user


@dataclass(frozen=True)
class IssuedDeviceToken:
    device_token: DeviceToken
    plaintext: str  # shown once; never stored


@transaction.atomic
def issue_device_token(*, user: User, name: str) -> IssuedDeviceToken:
    """A token for one of a driver's devices. Only an active driver with a driver record gets
    one: the driver app is no way in for dispatchers, admins or client users."""
    if not user.is_active or user.role != Role.DRIVER:
        raise ValidationError({"username": "Only drivers sign in to the driver app."})
    if getattr(user, "driver", None) is None:
        raise ValidationError(
            {"username": "This account is not linked to a driver yet; ask your dispatcher."}
        )
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Name the device (e.g. 'Pixel 8')."})
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    device_token = DeviceToken(user=user, name=name, prefix=prefix, secret_hash=hash_secret(secret))
    device_token.full_clean()
    attribute_change(device_token, Actor.for_user(user), "issued")
    device_token.save()
    return IssuedDeviceToken(device_token=device_token, plaintext=f"{DEVICE_TOKEN_PREFIX}{prefix}_{secret}")


def may_revoke_device_token(user, device_token: DeviceToken) -> bool:
    """The driver themself, an admin of the driver's organisation, or platform staff."""
    if user.pk == device_token.user_id:
        return True
    if user.is_superuser or user.role == Role.PLATFORM_STAFF:
        return True
    return user.role == Role.ORG_ADMIN and user.organisation_id == device_token.user.organisation_id


@transaction.atomic
def revoke_device_token(*, device_token: DeviceToken, actor: Actor) -> DeviceToken:
    """A lost or retired device stops signing in at its next request (its socket at its next push)."""
    if actor.user is None or not may_revoke_device_token(actor.user, device_token):
        raise ValidationError(
            {"device_token": "Only the driver or an admin of their organisation may revoke it."}
        )
    device_token = lock(DeviceToken.objects).get(pk=device_token.pk)
    if device_token.revoked_at is None:
        device_token.revoked_at = timezone.now()
        attribute_change(device_token, actor, "revoked")
        device_token.save(update_fields=["revoked_at"])
    return device_token
