from rest_framework import serializers

from core.api.fields import StrictSerializer
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    client_id = serializers.UUIDField(read_only=True, allow_null=True)
    secret_hint = serializers.SerializerMethodField()

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "client_id",
            "url",
            "description",
            "event_types",
            "is_active",
            "secret_hint",
            "created_at",
        ]

    def get_secret_hint(self, subscription) -> str:
        return subscription.secret[:10] + "…"


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    """Returned once, at creation: the only time the signing secret is shown in full."""

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]


class WebhookSubscriptionInSerializer(StrictSerializer):
    url = serializers.URLField(max_length=500)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=50
    )


class WebhookSubscriptionUpdateSerializer(StrictSerializer):
    url = serializers.URLField(max_length=500, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=50, required=False
    )
    is_active = serializers.BooleanField(required=False)


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "response_status", "response_body", "error", "duration_ms", "attempted_at"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="event.event_type", read_only=True)
    event_id = serializers.UUIDField(read_only=True)
    event_sequence = serializers.IntegerField(source="event.sequence", read_only=True)
    subscription_id = serializers.UUIDField(read_only=True, allow_null=True)
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "subscription_id",
            "url",
            "event_id",
            "event_sequence",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_response_status",
            "last_error",
            "delivered_at",
            "created_at",
            "attempt_log",
        ]
