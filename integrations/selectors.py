from django.db.models import QuerySet

from integrations.models import WebhookDelivery, WebhookSubscription


def subscriptions_visible_to(user) -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.filter(organisation_id=user.organisation_id)


def deliveries_visible_to(user) -> QuerySet[WebhookDelivery]:
    return (
        WebhookDelivery.objects.filter(subscription__organisation_id=user.organisation_id)
        .select_related("event")
        .prefetch_related("attempt_log")
    )
