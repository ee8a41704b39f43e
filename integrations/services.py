"""Writes for integrations: API keys and webhook subscriptions."""

import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from fleet.models import ALL_SCOPES, Organisation
from integrations.authentication import KEY_PREFIX, hash_secret
from integrations.models import ApiKey, WebhookSubscription


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
) -> IssuedApiKey:
    from django.conf import settings

    scopes = list(ALL_SCOPES) if scopes is None else sorted(set(scopes))
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey(
        organisation=organisation,
        name=name,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        scopes=scopes,
        rate_limit_per_minute=rate_limit_per_minute or settings.API_KEY_DEFAULT_RATE_PER_MINUTE,
        created_by=created_by,
    )
    api_key.full_clean()
    api_key.save()
    return IssuedApiKey(api_key=api_key, plaintext=f"{KEY_PREFIX}{prefix}_{secret}")


def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


KNOWN_EVENT_PREFIXES = ("order.", "driver.")


def validate_event_types(event_types: list[str]) -> list[str]:
    if not event_types:
        raise ValidationError({"event_types": "Name at least one event type, or '*'."})
    for pattern in event_types:
        if pattern != "*" and not pattern.startswith(KNOWN_EVENT_PREFIXES):
            raise ValidationError({"event_types": f"Unknown event type '{pattern}'."})
    return sorted(set(event_types))


@transaction.atomic
def create_webhook_subscription(
    *, organisation: Organisation, url: str, event_types: list[str], description: str = ""
) -> WebhookSubscription:
    subscription = WebhookSubscription(
        organisation=organisation,
        url=url,
        event_types=validate_event_types(event_types),
        description=description,
        secret=new_webhook_secret(),
    )
    subscription.full_clean()
    subscription.save()
    return subscription


@transaction.atomic
def update_webhook_subscription(*, subscription: WebhookSubscription, **changes) -> WebhookSubscription:
    if "event_types" in changes:
        changes["event_types"] = validate_event_types(changes["event_types"])
    for name, value in changes.items():
        setattr(subscription, name, value)
    subscription.full_clean()
    subscription.save()
    return subscription
