"""Writes for integrations: API keys and webhook subscriptions."""

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from fleet.models import ALL_SCOPES, Organisation
from integrations.authentication import KEY_PREFIX, hash_secret
from integrations.models import ApiKey, WebhookSubscription
from integrations.webhooks import catalogue
from integrations.webhooks.delivery import is_public_address


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


def validate_event_types(event_types: list[str]) -> list[str]:
    if not event_types:
        raise ValidationError({"event_types": "Name at least one event type, or '*'."})
    unknown = [pattern for pattern in event_types if not catalogue.is_known_pattern(pattern)]
    if unknown:
        known = ", ".join(sorted(catalogue.event_types()))
        message = f"Unknown event type '{unknown[0]}'. Use '*', 'order.*', 'driver.*' or one of: {known}."
        raise ValidationError({"event_types": message})
    return sorted(set(event_types))


def validate_target_url(url: str) -> None:
    """An http(s) URL; an address of our own network is refused here unless allowed.

    Host names are checked again (resolved) at every delivery: DNS can change.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        host = None
    if host is None or parts.scheme not in ("http", "https"):
        raise ValidationError({"url": "Use an http:// or https:// URL."})
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise ValidationError({"url": "Webhooks cannot be sent to this server's own network."})
    try:
        public = is_public_address(host)
    except ValueError:  # a name, not an address literal
        return
    if not public:
        raise ValidationError({"url": "Webhooks cannot be sent to a private or local address."})


@transaction.atomic
def create_webhook_subscription(
    *, organisation: Organisation, url: str, event_types: list[str], description: str = ""
) -> WebhookSubscription:
    validate_target_url(url)
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
    if "url" in changes:
        validate_target_url(changes["url"])
    for name, value in changes.items():
        setattr(subscription, name, value)
    subscription.full_clean()
    subscription.save()
    return subscription
