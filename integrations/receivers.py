"""Fan each recorded domain event out to the organisation's matching webhook subscriptions."""

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from core.events import event_recorded
from integrations import tasks
from integrations.models import WebhookDelivery, WebhookSubscription


@receiver(event_recorded)
def create_webhook_deliveries(sender, event, **kwargs) -> None:
    """Runs inside the service's transaction: the deliveries commit (or not) with the event."""
    subscriptions = WebhookSubscription.objects.filter(organisation_id=event.organisation_id, is_active=True)
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
