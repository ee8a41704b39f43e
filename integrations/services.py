"""Writes for integrations: webhook subscriptions and delivery replays."""

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import events
from core.db import lock
from core.exceptions import ConcurrentChange
from identity.models import Client, Organisation
from integrations import tasks
from integrations.models import WebhookDelivery, WebhookSubscription
from integrations.webhooks.delivery import STALE_CLAIM_AFTER
from integrations.webhooks.targets import TargetRefused, check_url


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def validate_event_types(event_types: list[str], *, for_client: bool = False) -> list[str]:
    """Known patterns, deduplicated; for a client's subscription only patterns matching an
    event a client hears (its orders'), since anything else would never be sent."""
    if not isinstance(event_types, list) or not all(isinstance(pattern, str) for pattern in event_types):
        raise ValidationError({"event_types": 'A list of event types, e.g. ["order.*"].'})
    if not event_types:
        raise ValidationError({"event_types": "Name at least one event type, or '*'."})
    unknown = [pattern for pattern in event_types if not events.is_known_pattern(pattern)]
    if unknown:
        known = ", ".join(sorted(events.event_types()))
        message = f"Unknown event type '{unknown[0]}'. Use '*', 'order.*', 'driver.*' or one of: {known}."
        raise ValidationError({"event_types": message})
    unheard = [
        p for p in event_types if for_client and not events.is_known_pattern(p, client_scoped_only=True)
    ]
    if unheard:
        known = ", ".join(sorted(events.event_types(client_scoped_only=True)))
        message = (
            f"A client's subscription never hears '{unheard[0]}': it hears only its orders' events. "
            f"Use '*', 'order.*' or one of: {known}."
        )
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


def validate_room_for_an_active_subscription(
    organisation: Organisation, *, client_id=None, other_than=None
) -> None:
    """At most WEBHOOK_MAX_SUBSCRIPTIONS_PER_ORG active subscriptions per organisation, and at
    most WEBHOOK_MAX_SUBSCRIPTIONS_PER_CLIENT of them for one client.

    Every active subscription adds a delivery per event: the caps keep one tenant from
    filling the sweeps that every tenant shares, and one client's key from taking all of its
    organisation's slots.
    """
    active = WebhookSubscription.objects.filter(organisation=organisation, is_active=True)
    if other_than is not None:
        active = active.exclude(pk=other_than.pk)
    limit = settings.WEBHOOK_MAX_SUBSCRIPTIONS_PER_ORG
    if active.count() >= limit:
        message = f"An organisation can have at most {limit} active subscriptions; deactivate or delete one."
        raise ValidationError({"is_active": message})
    client_limit = settings.WEBHOOK_MAX_SUBSCRIPTIONS_PER_CLIENT
    if client_id is not None and active.filter(client_id=client_id).count() >= client_limit:
        message = f"A client can have at most {client_limit} active subscriptions; deactivate or delete one."
        raise ValidationError({"is_active": message})


def validate_client(organisation: Organisation, client_id) -> None:
    if client_id is not None and not Client.objects.filter(id=client_id, organisation=organisation).exists():
        raise ValidationError({"client": "Not a client of this organisation."})


def _lock_organisation(organisation: Organisation) -> None:
    """Counting active subscriptions and adding one happen one writer at a time per organisation."""
    lock(Organisation.objects.filter(pk=organisation.pk)).first()


@transaction.atomic
def create_webhook_subscription(
    *,
    organisation: Organisation,
    url: str,
    event_types: list[str],
    description: str = "",
    client_id=None,
    is_active: bool = True,
) -> WebhookSubscription:
    """A subscription of the organisation, or of one client (then it hears only that client's).

    Its signing secret is made here and only here; callers show it once.
    """
    validate_target_url(url)
    event_types = validate_event_types(event_types, for_client=client_id is not None)
    validate_client(organisation, client_id)
    if is_active:
        _lock_organisation(organisation)
        validate_room_for_an_active_subscription(organisation, client_id=client_id)
    subscription = WebhookSubscription(
        organisation=organisation,
        client_id=client_id,
        url=url,
        event_types=event_types,
        description=description,
        is_active=is_active,
        secret=new_webhook_secret(),
    )
    subscription.full_clean()
    subscription.save()
    return subscription


@transaction.atomic
def update_webhook_subscription(*, subscription: WebhookSubscription, **changes) -> WebhookSubscription:
    """Change url, description, event_types or is_active, checked as at creation."""
    if "event_types" in changes:
        for_client = subscription.client_id is not None
        changes["event_types"] = validate_event_types(changes["event_types"], for_client=for_client)
    if "url" in changes:
        validate_target_url(changes["url"])
    # Read from the database: the caller's instance may already carry the change (admin form).
    was_active = WebhookSubscription.objects.filter(pk=subscription.pk, is_active=True).exists()
    if changes.get("is_active") and not was_active:
        _lock_organisation(subscription.organisation)
        validate_room_for_an_active_subscription(
            subscription.organisation, client_id=subscription.client_id, other_than=subscription
        )
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
