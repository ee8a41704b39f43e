"""Scorecards over the API: a driver's own (driver app), the organisation's for dispatchers
(JSON and CSV), excusing a late delivery, and the performance score's settings.

Scorecards are about the organisation's drivers, so they need `drivers:read`. A key or user
limited to one client (`orders:read`) gets the client's view instead: per driver who carried
its orders, how those orders went (selectors.client_scorecards), never the figures that mix
every client's work (offer answers, the performance score). A driver signed in reads only
their own (fleet.selectors.drivers_visible_to).
"""

import csv
import io
import json

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, serializers
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from core.actors import Actor
from core.api.fields import StrictSerializer
from core.api.idempotency import IdempotentPostMixin
from core.api.permissions import IsOrganisationMember
from core.api.schema import IDEMPOTENCY_HEADER
from core.api.views import OrganisationScopedMixin
from dispatch.api.driver_views import DriverAppMixin
from fleet.selectors import drivers_visible_to
from scorecards import selectors, services
from scorecards.scoring import METRICS

RECENT_OUTCOMES_SHOWN = 20


def _view_with_outcomes(card) -> dict:
    view = selectors.scorecard_view(card)
    view["recent_outcomes"] = [
        selectors.outcome_view(outcome)
        for outcome in selectors.recent_outcomes(card.driver, RECENT_OUTCOMES_SHOWN)
    ]
    return view


@extend_schema(tags=["driver app"], responses={200: dict})
class DriverScorecardView(DriverAppMixin, APIView):
    """The driver's own scorecard: each window's figures, the last N orders, the performance
    score with its parts, the daily trend, and their recent deliveries with any excuse and its
    evidence."""

    def get(self, request):
        return Response(_view_with_outcomes(selectors.scorecard_of(self.driver)))


class ScorecardAccessMixin(OrganisationScopedMixin):
    permission_classes = [IsOrganisationMember]

    @property
    def scope_read(self) -> str:
        return "drivers:read" if self.client_id is None else "orders:read"

    def drivers(self):
        return drivers_visible_to(self.request.user)


class CSVRenderer(BaseRenderer):
    """Lets `?format=csv` through content negotiation (the view writes the CSV itself); an
    error on that route is still JSON."""

    media_type = "text/csv"
    format = "csv"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code >= 400:
            response["Content-Type"] = "application/json"
        return json.dumps(data).encode()


def _wants_csv(request) -> bool:
    return request.path.endswith(".csv") or request.query_params.get("format") == "csv"


@extend_schema(tags=["scorecards"], responses={200: dict})
class ScorecardListView(ScorecardAccessMixin, APIView):
    """Every driver's scorecard in the caller's organisation (a driver: their own), by name;
    `/api/v1/scorecards.csv` or `?format=csv` for a CSV export."""

    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer]

    def get(self, request, format=None):
        if self.client_id is not None:
            views = selectors.client_scorecards(
                organisation_id=self.organisation.id, client_id=self.client_id
            )
            if _wants_csv(request):
                return _csv_response(views, selectors.CLIENT_CSV_COLUMNS, selectors.client_csv_row)
            return Response({"results": views})
        visible = set(self.drivers().values_list("id", flat=True))
        cards = [
            card
            for card in selectors.scorecards_for(organisation_id=self.organisation.id)
            if card.driver_id in visible
        ]
        options = selectors.settings_for(self.organisation.id)
        views = [selectors.scorecard_view(card, with_history=False, options=options) for card in cards]
        if _wants_csv(request):
            return _csv_response(views, selectors.CSV_COLUMNS, selectors.csv_row)
        return Response({"results": views})


def _csv_response(views: list[dict], columns, row_of) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for view in views:
        writer.writerow(_csv_safe(value) for value in row_of(view))
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="scorecards.csv"'
    return response


def _csv_safe(value):
    """A cell a spreadsheet will not run as a formula (a driver's name is free text)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


@extend_schema_view(
    get=extend_schema(tags=["scorecards"], responses={200: dict}, operation_id="scorecards_detail")
)
class ScorecardDetailView(ScorecardAccessMixin, APIView):
    """One driver's scorecard with its trend and recent deliveries (another organisation's
    driver is a 404). A client-limited caller gets its view of a driver who carried its orders
    in the last 30 days, with those orders' recent outcomes (any other driver is a 404)."""

    def get(self, request, driver_id):
        if self.client_id is not None:
            found = selectors.client_scorecards(
                organisation_id=self.organisation.id, client_id=self.client_id, driver_id=driver_id
            )
            if not found:
                raise Http404
            driver = self.drivers().get(id=driver_id)
            found[0]["recent_outcomes"] = [
                selectors.outcome_view(outcome)
                for outcome in selectors.client_outcomes(
                    driver, client_id=self.client_id, n=RECENT_OUTCOMES_SHOWN
                )
            ]
            return Response(found[0])
        driver = get_object_or_404(self.drivers(), id=driver_id)
        return Response(_view_with_outcomes(selectors.scorecard_of(driver)))


class ExcuseSerializer(StrictSerializer):
    reason = serializers.CharField(
        max_length=services.EXCUSE_REASON_MAX, help_text="Why it was not the driver's doing."
    )


@extend_schema(
    tags=["scorecards"], request=ExcuseSerializer, responses={200: dict}, parameters=[IDEMPOTENCY_HEADER]
)
class ExcuseOutcomeView(IdempotentPostMixin, OrganisationScopedMixin, APIView):
    """Excuse a late delivery (a dispatcher, with a reason): it stops counting against the
    driver's on-time rate; audited as `delivery.excused`. Not for client-limited callers."""

    permission_classes = [IsOrganisationMember]
    scope_write = "orders:write"

    def post(self, request, outcome_id):
        if self.client_id is not None or getattr(request.user, "is_driver", False):
            raise exceptions.PermissionDenied("Only the organisation's dispatchers excuse a late delivery.")
        body = ExcuseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        outcome = services.excuse_late_delivery(
            outcome_id=outcome_id,
            organisation=self.organisation,
            actor=Actor.from_request(request),
            reason=body.validated_data["reason"],
        )
        return Response(selectors.outcome_view(outcome))


class ScorecardSettingsInSerializer(StrictSerializer):
    weights = serializers.DictField(help_text=f"Weight per metric ({', '.join(METRICS)}), 0 to 100.")
    prior_strength = serializers.IntegerField(
        help_text="How many observations the neutral prior (1.0) is worth per metric (0 to 1000)."
    )
    last_n_orders = serializers.IntegerField(help_text="How many recent orders 'the last N' is (1 to 500).")


def settings_view(row) -> dict:
    return {"weights": row.weights, "prior_strength": row.prior_strength, "last_n_orders": row.last_n_orders}


@extend_schema_view(
    get=extend_schema(tags=["scorecards"], responses={200: dict}),
    put=extend_schema(tags=["scorecards"], request=ScorecardSettingsInSerializer, responses={200: dict}),
    patch=extend_schema(
        tags=["scorecards"], request=ScorecardSettingsInSerializer(partial=True), responses={200: dict}
    ),
)
class ScorecardSettingsView(OrganisationScopedMixin, APIView):
    """The organisation's performance score settings: the weights, the prior's strength and N.
    Dispatchers read; organisation admins change them (`dispatch:write`). PATCH merges `weights`
    into the stored ones; an unknown metric or a weight out of range names `weights.<metric>`."""

    permission_classes = [IsOrganisationMember]
    scope_read = "dispatch:read"
    scope_write = "dispatch:write"

    def get(self, request):
        return Response(settings_view(selectors.settings_for(self.organisation.id)))

    def put(self, request):
        return self._write(request, partial=False)

    def patch(self, request):
        return self._write(request, partial=True)

    def _write(self, request, *, partial: bool) -> Response:
        body = ScorecardSettingsInSerializer(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        row = services.update_scorecard_settings(
            organisation=self.organisation,
            changes=body.validated_data,
            merge_weights=partial,
            actor=Actor.from_request(request),
        )
        return Response(settings_view(row))
