"""Settlement for the organisation's callers: invoices per client (a client-limited key or
user sees only its own client's), and Stripe's webhook endpoint."""

import logging
from datetime import UTC, datetime

import stripe
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions
from rest_framework.response import Response

from core.api.views import OrganisationViewSet
from identity.models import Client
from payouts import selectors
from payouts.api.driver_views import document_response
from payouts.api.serializers import InvoiceSummarySerializer
from payouts.providers.stripe_connect import verify_event
from payouts.services.stripe_events import Replayed, handle_stripe_event

logger = logging.getLogger(__name__)

INVOICE_PARAMETERS = [
    OpenApiParameter(
        "from", str, description="Start (ISO 8601 with offset; default: this month's start, UTC)."
    ),
    OpenApiParameter("to", str, description="End, excluded (default: now)."),
]


def _time(params, name: str, default: datetime) -> datetime:
    value = params.get(name)
    if not value:
        return default
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise ValidationError({name: "An ISO 8601 time with its UTC offset."})
    return parsed


@extend_schema_view(
    list=extend_schema(
        tags=["invoices"],
        parameters=INVOICE_PARAMETERS,
        responses=InvoiceSummarySerializer(many=True),
        operation_id="v1_invoices_list",
    ),
    retrieve=extend_schema(
        tags=["invoices"],
        parameters=[
            OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The client's id."),
            *INVOICE_PARAMETERS,
            OpenApiParameter("as", str, enum=["json", "csv", "html"]),
        ],
        responses={200: OpenApiTypes.OBJECT},
    ),
)
class InvoiceViewSet(OrganisationViewSet):
    """What each client was charged for its deliveries over a period (the tip passed on to the
    driver included), from the ledger. `{id}` is the client's id."""

    queryset = Client.objects.none()  # for the schema only; clients() scopes every request
    scope_read = "orders:read"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if getattr(request.user, "is_driver", False):
            raise exceptions.PermissionDenied("Invoices are for the organisation and its clients.")

    def clients(self):
        clients = Client.objects.filter(organisation=self.organisation).order_by("name")
        return clients.filter(id=self.client_id) if self.client_id is not None else clients

    def period(self):
        now = timezone.now()
        month_start = datetime(now.year, now.month, 1, tzinfo=UTC)
        start = _time(self.request.query_params, "from", month_start)
        end = _time(self.request.query_params, "to", now)
        if end <= start:
            raise ValidationError({"to": "Must be after from."})
        return start, end

    def list(self, request):
        start, end = self.period()
        results = []
        for client in self.clients():
            doc = selectors.client_invoice(self.organisation, client=client, start=start, end=end)
            results.append(
                {
                    "id": str(client.id),
                    "client": client.name,
                    "currency": doc.currency,
                    "charged_minor": doc.closing_minor - doc.opening_minor,
                    "deliveries": len(doc.lines),
                    "period_start": start.isoformat(),
                    "period_end": end.isoformat(),
                }
            )
        return Response({"next": None, "previous": None, "results": results})

    def retrieve(self, request, pk=None):
        client = self.clients().filter(id=pk).first()
        if client is None:
            raise exceptions.NotFound()
        start, end = self.period()
        doc = selectors.client_invoice(self.organisation, client=client, start=start, end=end)
        return document_response(doc, request.query_params.get("as", "json"), f"invoice-{client.slug}")


def _refused(code: str, message: str, status: int, field: str = "body") -> JsonResponse:
    return JsonResponse(
        {"error": {"code": code, "message": message, "fields": {field: [message]}}}, status=status
    )


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Stripe's events, verified with its signature scheme (Stripe-Signature, the webhook
    secret, a replay window); an event id seen before is refused, nothing applied twice."""
    if not settings.STRIPE_WEBHOOK_SECRET:
        return _refused("not_configured", "Stripe webhooks are not configured here.", 404)
    try:
        event = verify_event(
            payload=request.body,
            signature=request.headers.get("Stripe-Signature", ""),
            secret=settings.STRIPE_WEBHOOK_SECRET,
            tolerance_s=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
        )
    except stripe.SignatureVerificationError as exc:
        return _refused(
            "bad_signature",
            f"The Stripe-Signature does not verify: {exc.user_message or exc}",
            400,
            "Stripe-Signature",
        )
    except ValueError:
        return _refused("invalid", "The body is not a Stripe event.", 400)
    try:
        outcome = handle_stripe_event(event=event)
    except Replayed as exc:
        return _refused("replayed", str(exc), 409, "id")
    except (KeyError, TypeError):
        return _refused("invalid", "The event lacks its id, type or data.object.", 400)
    logger.info("stripe event %s (%s): %s", event.get("id"), event.get("type"), outcome)
    return JsonResponse({"received": True, "outcome": outcome})
