"""Writes for integrations: webhook subscriptions and delivery replays."""

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import events
from core.exceptions import ConcurrentChange
from identity.models import Organisation
from integrations import tasks
from integrations.models import WebhookDelivery, WebhookSubscription
from integrations.webhooks.delivery import STALE_CLAIM_AFTER
from integrations.webhooks.targets import TargetRefused, check_url


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def validate_event_types(event_types: list[str]) -> list[str]:
    if not event_types:
        raise ValidationError({"event_types": "Name at least one event type, or '*'."})
    unknown = [pattern for pattern in event_types if not events.is_known_pattern(pattern)]
    if unknown:
        known = ", ".join(sorted(events.event_types()))
        message = f"Unknown event type '{unknown[0]}'. Use '*', 'order.*', 'driver.*' or one of: {known}."
        raise ValidationError({"event_types": message})
    return sorted(set(event_types))


def validate_target_url(url: str) -> None:
    """The rules of integrations.webhooks.targets, as a field error.

    Host names are checked again (resolved) at every delivery: DNS can change.
    """
    try:
        check_url(url)
    except TargetRefused as exc:
        raise ValidationError({"url": str(exc)}) from exc


@transaction.atomic
def create_webhook_subscription(
    *,
    organisation: Organisation,
    url: str,
    event_types: list[str],
    description: str = "",
    client_id=None,
) -> WebhookSubscription:
    """A subscription of the organisation, or of one client (then it hears only that client's)."""
    validate_target_url(url)
    subscription = WebhookSubscription(
        organisation=organisation,
        client_id=client_id,
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


@transaction.atomic
def replay_delivery(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again (manual replay), whatever its outcome: due now, attempts go on.

    Refused while a try is in flight (it would be sent twice at once) and while the
    subscription is inactive or deleted (it would never be sent).
    """
    if delivery.subscription is None or not delivery.subscription.is_active:
        raise ValidationError({"subscription": "The subscription is inactive; activate it first."})
    now = timezone.now()
    in_flight = Q(status=WebhookDelivery.Status.SENDING, next_attempt_at__gt=now - STALE_CLAIM_AFTER)
    updated = (
        WebhookDelivery.objects.filter(id=delivery.id)
        .exclude(in_flight)
        .update(status=WebhookDelivery.Status.PENDING, next_attempt_at=now)
    )
    if not updated:
        raise ConcurrentChange("This delivery is being sent right now; replay it once that try is logged.")
    delivery.refresh_from_db()
    if settings.BACKGROUND_JOBS == "celery":
        transaction.on_commit(lambda: tasks.enqueue_deliveries([delivery.id]))
    return delivery


@transaction.atomic
def delete_webhook_subscription(*, subscription: WebhookSubscription) -> None:
    """Delete a subscription; its delivery log stays (organisation, client and URL on each row).

    Deliveries not yet succeeded or given up are cancelled with the reason, so they are never
    sent and the log says why. A try already in flight still logs its attempt.
    """
    WebhookDelivery.objects.filter(
        subscription=subscription,
        status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.SENDING],
    ).update(
        status=WebhookDelivery.Status.CANCELLED,
        next_attempt_at=None,
        last_error="Cancelled: the subscription was deleted.",
    )
    subscription.delete()
