"""The driver's money in the driver app's API: earnings with their breakdown (also on the
delivered order, the moment the proof is accepted), balance, instant cash-out (a quote with
its fee, then a confirm), statements, disputes, and the payout provider's onboarding.

Every read starts from the caller's own driver record, as the rest of /api/v1/driver/."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import IDEMPOTENCY_HEADER
from dispatch.api.driver_views import DriverAppMixin, DriverOrderViewSet
from dispatch.api.serializers import DeliverSerializer, OrderDetailSerializer
from payouts import selectors
from payouts.api.serializers import (
    BalanceSerializer,
    ConfirmInSerializer,
    DisputeInSerializer,
    DisputeSerializer,
    EarningSerializer,
    OnboardingInSerializer,
    OnboardingSerializer,
    PayoutSerializer,
    QuoteInSerializer,
    QuoteSerializer,
)
from payouts.models import Dispute, Payout, PayoutCycle
from payouts.providers import NoProviderAccount
from payouts.services import disputes, payouts

TAGS = ["driver app: money"]


def with_earning(order_data: dict, driver, order_id) -> dict:
    earning = selectors.earnings_of(driver).filter(order_id=order_id, reversed_at__isnull=True).first()
    return {**order_data, "earning": EarningSerializer(earning).data if earning else None}


class SettledDriverOrderViewSet(DriverOrderViewSet):
    """The driver's orders, as dispatch serves them, with the earning of a delivered one."""

    @extend_schema(
        tags=["driver app"],
        request=DeliverSerializer,
        responses=OrderDetailSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        description="Deliver with a proof of delivery; the answer carries the earning it posted.",
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser])
    def deliver(self, request, pk=None):
        response = super().deliver(request, pk)
        return Response(with_earning(response.data, self.driver, response.data["id"]))

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        return Response(with_earning(response.data, self.driver, response.data["id"]))


@extend_schema(tags=TAGS, responses=EarningSerializer(many=True))
class DriverEarningsView(DriverAppMixin, APIView):
    """The driver's earnings, newest first, each with its breakdown in words and figures."""

    def get(self, request):
        return Response(EarningSerializer(selectors.earnings_of(self.driver)[:200], many=True).data)


@extend_schema(tags=TAGS, responses=BalanceSerializer)
class DriverBalanceView(DriverAppMixin, APIView):
    """What is owed to the driver now, and their recent payouts."""

    def get(self, request):
        currency = self.organisation.currency
        recent = Payout.objects.filter(driver=self.driver).order_by("-created_at")[:20]
        return Response(
            {
                "currency": currency,
                "balance_minor": payouts.owed_minor(self.driver, currency),
                "instant_fee": {
                    "basis_points": settings.PAYOUT_INSTANT_FEE_BASIS_POINTS,
                    "minimum_minor": settings.PAYOUT_INSTANT_FEE_MIN_MINOR,
                },
                "payouts": PayoutSerializer(recent, many=True).data,
            }
        )


class DriverCashOutQuoteView(DriverAppMixin, APIView):
    """Step 1 of an instant cash-out: the fee and what reaches the card, before anything moves."""

    @extend_schema(
        tags=TAGS, request=QuoteInSerializer, responses=QuoteSerializer, parameters=[IDEMPOTENCY_HEADER]
    )
    def post(self, request):
        incoming = QuoteInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        quote = payouts.quote_cash_out(
            driver=self.driver, amount_minor=incoming.validated_data["amount_minor"]
        )
        return Response(QuoteSerializer(quote).data, status=status.HTTP_201_CREATED)


class DriverCashOutConfirmView(DriverAppMixin, APIView):
    """Step 2: confirm the quote; the amount leaves the balance and is paid out (once)."""

    @extend_schema(
        tags=TAGS, request=ConfirmInSerializer, responses=PayoutSerializer, parameters=[IDEMPOTENCY_HEADER]
    )
    def post(self, request):
        incoming = ConfirmInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        payout = payouts.confirm_cash_out(
            driver=self.driver, quote_id=incoming.validated_data["quote_id"], actor=self.actor
        )
        return Response(PayoutSerializer(payout).data)


class DriverDisputesView(DriverAppMixin, APIView):
    """The driver's disputes with each decision's reason; open one about an earning."""

    @extend_schema(tags=TAGS, responses=DisputeSerializer(many=True))
    def get(self, request):
        rows = Dispute.objects.filter(driver=self.driver).order_by("-created_at")[:200]
        return Response(DisputeSerializer(rows, many=True).data)

    @extend_schema(
        tags=TAGS, request=DisputeInSerializer, responses=DisputeSerializer, parameters=[IDEMPOTENCY_HEADER]
    )
    def post(self, request):
        incoming = DisputeInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        dispute = disputes.open_dispute(driver=self.driver, actor=self.actor, **incoming.validated_data)
        return Response(DisputeSerializer(dispute).data, status=status.HTTP_201_CREATED)


STATEMENT_PARAMETERS = [
    OpenApiParameter("cycle", str, description="A payout cycle's id (default: since the last cycle)."),
    OpenApiParameter("as", str, enum=["json", "csv", "html"], description="The document's format."),
]


def document_response(doc: selectors.Document, as_: str, filename: str):
    if as_ == "csv":
        response = HttpResponse(doc.as_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return response
    if as_ == "html":
        return HttpResponse(doc.as_html(), content_type="text/html; charset=utf-8")
    if as_ != "json":
        raise ValidationError({"as": "One of json, csv, html."})
    return Response(doc.as_dict())


def period_of(organisation, params) -> tuple:
    """The cycle named by `?cycle=`, or the open period since the last cycle ended."""
    cycle_id = params.get("cycle")
    cycles = PayoutCycle.objects.filter(organisation=organisation)
    if cycle_id:
        try:
            cycle = cycles.filter(id=cycle_id).first()
        except ValidationError:
            cycle = None
        if cycle is None:
            raise ValidationError({"cycle": "No such payout cycle."})
        return cycle.period_start, cycle.period_end
    last = cycles.order_by("-period_end").first()
    return (last.period_end if last else None), None


class DriverStatementView(DriverAppMixin, APIView):
    """The driver's statement for a payout cycle (earnings, adjustments, top-ups, payouts,
    fees, opening and closing balance) as JSON, CSV or HTML; their cycles are listed below."""

    @extend_schema(tags=TAGS, parameters=STATEMENT_PARAMETERS, responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        start, end = period_of(self.organisation, request.query_params)
        doc = selectors.driver_statement(self.driver, start=start, end=end)
        as_ = request.query_params.get("as", "json")
        response = document_response(doc, as_, f"statement-{(start or end or 'all')!s:.10}")
        if as_ == "json":
            cycles = PayoutCycle.objects.filter(organisation=self.organisation).order_by("-period_start")[:60]
            response.data["cycles"] = [
                {
                    "id": str(c.id),
                    "period_start": c.period_start.isoformat(),
                    "period_end": c.period_end.isoformat(),
                }
                for c in cycles
            ]
        return response


class DriverPayoutOnboardingView(DriverAppMixin, APIView):
    """A link to the payout provider's onboarding (Stripe Express), where the driver adds the
    bank account or debit card they are paid to."""

    @extend_schema(
        tags=TAGS,
        request=OnboardingInSerializer,
        responses=OnboardingSerializer,
        parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request):
        incoming = OnboardingInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            url = payouts.onboarding_link(driver=self.driver, **incoming.validated_data)
        except NoProviderAccount as exc:
            return Response({"url": None, "message": str(exc)})
        return Response({"url": url, "message": "Open the link to set up where you are paid."})
