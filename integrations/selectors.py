"""Reads for webhooks, scoped to the caller: their organisation, or their client's part of it."""

from django.db.models import QuerySet

from integrations.models import WebhookDelivery, WebhookSubscription


def _client_scoped(queryset: QuerySet, user) -> QuerySet:
    client_id = getattr(user, "client_id", None)
    return queryset if client_id is None else queryset.filter(client_id=client_id)


def subscriptions_visible_to(user) -> QuerySet[WebhookSubscription]:
    return _client_scoped(WebhookSubscription.objects.filter(organisation_id=user.organisation_id), user)


def deliveries_visible_to(user) -> QuerySet[WebhookDelivery]:
    deliveries = WebhookDelivery.objects.filter(organisation_id=user.organisation_id)
    return _client_scoped(deliveries, user).select_related("event").prefetch_related("attempt_log")
