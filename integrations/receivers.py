"""Fan each recorded domain event out to the organisation's matching webhook subscriptions."""

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from core.events import events_recorded
from integrations import tasks
from integrations.models import WebhookDelivery, WebhookSubscription


@receiver(events_recorded)
def create_webhook_deliveries(sender, events, **kwargs) -> None:
    """Runs inside the service's transaction: the deliveries commit (or not) with the events.
    The events of one call share an organisation: its subscriptions are read once."""
    subscriptions = list(
        WebhookSubscription.objects.filter(organisation_id=events[0].organisation_id, is_active=True)
    )
    if not subscriptions:
        return
    now = timezone.now()
    deliveries = [
        WebhookDelivery(
            organisation_id=event.organisation_id,
            client_id=subscription.client_id,
            subscription=subscription,
            url=subscription.url,
            event=event,
            next_attempt_at=now,
        )
        for event in events
        for subscription in subscriptions
        if subscription.wants(event)
    ]
    if not deliveries:
        return
    WebhookDelivery.objects.bulk_create(deliveries)
    if settings.BACKGROUND_JOBS == "celery":
        # Sent after the commit, so a worker never looks for a row it cannot see yet.
        ids = [delivery.id for delivery in deliveries]
        transaction.on_commit(lambda: tasks.enqueue_deliveries(ids))
