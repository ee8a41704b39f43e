"""Writes for identity and access: clients and API keys."""

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from identity.authentication import KEY_PREFIX, hash_secret
from identity.models import ALL_SCOPES, CLIENT_SCOPES, ApiKey, Client, Organisation


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


@transaction.atomic
def create_client(*, organisation: Organisation, slug: str, name: str) -> Client:
    """A retailer the organisation delivers for; its slug is unique in the organisation."""
    client = Client(organisation=organisation, slug=slug, name=name)
    client.full_clean(validate_constraints=False)
    if Client.objects.filter(organisation=organisation, slug=slug).exists():
        raise ValidationError({"slug": "A client with this slug already exists."})
    try:
        with transaction.atomic():
            client.save()
    except IntegrityError as exc:
        raise ValidationError({"slug": "A client with this slug already exists."}) from exc
    return client


@transaction.atomic
def update_client(*, client: Client, **changes) -> Client:
    """Rename a client or pause it (a paused client's orders are refused)."""
    for name, value in changes.items():
        setattr(client, name, value)
    client.full_clean(validate_constraints=False)
    client.save(update_fields=[*changes])
    return client
