"""Settlement's API shapes: earnings with their breakdown, payouts, quotes, disputes."""

from rest_framework import serializers

from core.api.fields import StrictSerializer
from payouts.models import CashOutQuote, Dispute, DisputeKind, Earning, Payout


class EarningSerializer(serializers.ModelSerializer):
    order_id = serializers.UUIDField(read_only=True)
    external_ref = serializers.CharField(source="order.external_ref", read_only=True)
    reversed = serializers.SerializerMethodField()

    class Meta:
        model = Earning
        fields = [
            "id",
            "order_id",
            "external_ref",
            "currency",
            "total_minor",
            "breakdown",
            "distance_m",
            "distance_source",
            "reversed",
            "reversed_reason",
            "created_at",
        ]

    def get_reversed(self, earning) -> bool:
        return earning.reversed_at is not None


class PayoutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payout
        fields = [
            "id",
            "kind",
            "currency",
            "amount_minor",
            "fee_minor",
            "net_minor",
            "provider",
            "status",
            "failure_reason",
            "created_at",
        ]


class QuoteInSerializer(StrictSerializer):
    amount_minor = serializers.IntegerField(min_value=1, help_text="What to take from your balance.")


class QuoteSerializer(serializers.ModelSerializer):
    net_minor = serializers.SerializerMethodField()

    class Meta:
        model = CashOutQuote
        fields = ["id", "currency", "amount_minor", "fee_minor", "net_minor", "expires_at"]

    def get_net_minor(self, quote) -> int:
        return quote.amount_minor - quote.fee_minor


class ConfirmInSerializer(StrictSerializer):
    quote_id = serializers.UUIDField()


class DisputeInSerializer(StrictSerializer):
    earning_id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=DisputeKind.choices)
    message = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    claimed_distance_m = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)


class DisputeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dispute
        fields = [
            "id",
            "earning_id",
            "kind",
            "message",
            "claimed_distance_m",
            "status",
            "check_reason",
            "check_inputs",
            "decision_reason",
            "created_at",
            "decided_at",
        ]


class OnboardingInSerializer(StrictSerializer):
    refresh_url = serializers.URLField()
    return_url = serializers.URLField()


class InstantFeeSerializer(serializers.Serializer):
    basis_points = serializers.IntegerField()
    minimum_minor = serializers.IntegerField()


class BalanceSerializer(serializers.Serializer):
    currency = serializers.CharField()
    balance_minor = serializers.IntegerField(help_text="What is owed to you now.")
    instant_fee = InstantFeeSerializer()
    payouts = PayoutSerializer(many=True)


class OnboardingSerializer(serializers.Serializer):
    url = serializers.URLField(allow_null=True)
    message = serializers.CharField()


class InvoiceSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The client's id.")
    client = serializers.CharField()
    currency = serializers.CharField()
    charged_minor = serializers.IntegerField()
    deliveries = serializers.IntegerField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
