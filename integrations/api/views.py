from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.schema import IDEMPOTENCY_HEADER
from core.api.views import OrganisationViewSet
from integrations import selectors, services
from integrations.api.filters import WebhookDeliveryFilter
from integrations.api.serializers import (
    WebhookDeliverySerializer,
    WebhookSubscriptionCreatedSerializer,
    WebhookSubscriptionInSerializer,
    WebhookSubscriptionSerializer,
    WebhookSubscriptionUpdateSerializer,
)
from integrations.models import WebhookDelivery, WebhookSubscription


@extend_schema_view(
    list=extend_schema(tags=["webhooks"]),
    retrieve=extend_schema(tags=["webhooks"]),
    create=extend_schema(
        tags=["webhooks"],
        request=WebhookSubscriptionInSerializer,
        responses={201: WebhookSubscriptionCreatedSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    ),
    partial_update=extend_schema(
        tags=["webhooks"],
        request=WebhookSubscriptionUpdateSerializer,
        responses={200: WebhookSubscriptionSerializer},
    ),
    destroy=extend_schema(tags=["webhooks"]),
)
class WebhookSubscriptionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OrganisationViewSet
):
    """Where your events are POSTed. The signing secret is shown once, in the create answer."""

    queryset = WebhookSubscription.objects.none()  # for the schema only; get_queryset scopes requests
    serializer_class = WebhookSubscriptionSerializer
    scope_read = scope_write = "webhooks:manage"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.subscriptions_visible_to(self.request.user)

    def create(self, request):
        incoming = WebhookSubscriptionInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        subscription = services.create_webhook_subscription(
            organisation=self.organisation, client_id=self.client_id, **incoming.validated_data
        )
        return Response(
            WebhookSubscriptionCreatedSerializer(subscription).data, status=status.HTTP_201_CREATED
        )

    def partial_update(self, request, pk=None):
        subscription = self.get_object()
        incoming = WebhookSubscriptionUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        subscription = services.update_webhook_subscription(
            subscription=subscription, **incoming.validated_data
        )
        return Response(WebhookSubscriptionSerializer(subscription).data)

    def perform_destroy(self, instance):
        services.delete_webhook_subscription(subscription=instance)


@extend_schema_view(
    list=extend_schema(tags=["webhooks"]),
    retrieve=extend_schema(tags=["webhooks"]),
    replay=extend_schema(
        tags=["webhooks"],
        request=None,
        responses={202: WebhookDeliverySerializer},
        parameters=[IDEMPOTENCY_HEADER],
    ),
)
class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationViewSet):
    """The delivery log: every event sent to your subscriptions, each try with its response."""

    queryset = WebhookDelivery.objects.none()  # for the schema only; get_queryset scopes requests
    serializer_class = WebhookDeliverySerializer
    scope_read = scope_write = "webhooks:manage"
    filterset_class = WebhookDeliveryFilter

    def get_queryset(self):
        return selectors.deliveries_visible_to(self.request.user)

    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        with transaction.atomic():
            delivery = services.replay_delivery(delivery=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
