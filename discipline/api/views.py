"""The discipline API: the organisation's rules (`/api/v1/discipline-rules`), the review queue
(`/api/v1/discipline/reviews`), and the driver's own decision record with appeals
(`/api/v1/driver/decisions`, with appeals)."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.actors import Actor
from core.api.schema import IDEMPOTENCY_HEADER
from core.api.views import OrganisationScopedMixin, OrganisationViewSet
from discipline import selectors, services
from discipline.api.serializers import (
    DisciplineAppealSerializer,
    DisciplineResolveSerializer,
    DisciplineReviewSerializer,
    DriverDisciplineDecisionSerializer,
    RuleSetSerializer,
    RulesInSerializer,
)
from discipline.models import DisciplineDecision, DisciplineReview
from dispatch.api.driver_views import DriverAppMixin
from dispatch.api.views import merge_patch


@extend_schema_view(
    get=extend_schema(tags=["discipline"], responses={200: RuleSetSerializer}),
    put=extend_schema(tags=["discipline"], request=RulesInSerializer, responses={200: RuleSetSerializer}),
    patch=extend_schema(tags=["discipline"], request=RulesInSerializer, responses={200: RuleSetSerializer}),
)
class DisciplineRulesView(OrganisationScopedMixin, APIView):
    """The organisation's discipline rules in force, with their version and each rule in words.
    Dispatchers read (`discipline:read`); organisation admins (and keys with
    `discipline:write`) change them: every change is a new version, and decisions keep the
    version they were made under. A mistake names its path (`rules.late_streak.threshold`) and
    writes nothing."""

    scope_read = "discipline:read"
    scope_write = "discipline:write"

    def get(self, request):
        return Response(RuleSetSerializer(services.rules_in_force(self.organisation)).data)

    def put(self, request):
        return self._write(request, partial=False)

    def patch(self, request):
        return self._write(request, partial=True)

    def _write(self, request, *, partial: bool) -> Response:
        incoming = RulesInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        rules = incoming.validated_data["rules"]
        if partial:
            rules = merge_patch(services.rules_in_force(self.organisation).rules, rules)
        row = services.update_rules(
            organisation=self.organisation, rules=rules, actor=Actor.from_request(request)
        )
        return Response(RuleSetSerializer(row).data)


def by_a_person(request) -> None:
    if getattr(request.user, "api_key", None) is not None:
        raise exceptions.PermissionDenied("A review is decided by a person, not an API key.")


def resolve_schema():
    return extend_schema(
        tags=["discipline"],
        request=DisciplineResolveSerializer,
        responses=DisciplineReviewSerializer,
        parameters=[IDEMPOTENCY_HEADER],
    )


@extend_schema_view(
    list=extend_schema(tags=["discipline"]),
    retrieve=extend_schema(tags=["discipline"]),
    lift=resolve_schema(),
    confirm=resolve_schema(),
)
class DisciplineReviewViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationViewSet):
    """The human review queue: drivers' appeals and the decisions a rule sent to a person
    (filter `?status=OPEN`). A dispatcher or admin (`discipline:review`, a person, not a key)
    lifts a decision (a driver it suspended is reinstated) or confirms it, with a reason the
    driver reads."""

    queryset = DisciplineReview.objects.none()  # for the schema only; get_queryset scopes every request
    serializer_class = DisciplineReviewSerializer
    scope_read = "discipline:read"
    scope_write = "discipline:review"
    filterset_fields = ["status", "kind"]

    def get_queryset(self):
        return selectors.review_queue(self.organisation)

    def _resolve(self, request, outcome: str) -> Response:
        incoming = DisciplineResolveSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        review = self.get_object()
        by_a_person(request)
        services.resolve_review(
            review_id=review.id,
            organisation=self.organisation,
            outcome=outcome,
            reason=incoming.validated_data["reason"],
            user=request.user,
        )
        return Response(DisciplineReviewSerializer(self.get_queryset().get(id=review.id)).data)

    @action(detail=True, methods=["post"])
    def lift(self, request, pk=None):
        return self._resolve(request, "lift")

    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        return self._resolve(request, "confirm")


@extend_schema_view(
    list=extend_schema(
        tags=["driver app"], description="The rules' decisions about the driver, newest first."
    ),
    retrieve=extend_schema(tags=["driver app"]),
    appeal=extend_schema(
        tags=["driver app"],
        request=DisciplineAppealSerializer,
        responses={201: DriverDisciplineDecisionSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    ),
)
class DriverDecisionViewSet(
    DriverAppMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The discipline rules' decisions about the driver (warnings, suspensions, reviews), each
    with its rule and version, exactly what it counted and left out, the explanation, the row
    of their decision record it was written to, and its reviews. Appeal one with
    `POST .../{id}/appeal {"text"}`: a person reviews it. (Every decision about the driver,
    whatever made it, is listed with its reason at /api/v1/drivers/{id}.)"""

    queryset = DisciplineDecision.objects.none()  # for the schema only
    serializer_class = DriverDisciplineDecisionSerializer
    lookup_value_converter = "uuid"

    def get_queryset(self):
        return selectors.decisions_of(self.driver)

    @action(detail=True, methods=["post"])
    def appeal(self, request, pk=None):
        decision = self.get_object()
        incoming = DisciplineAppealSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        services.appeal(decision_id=decision.id, driver=self.driver, text=incoming.validated_data["text"])
        return Response(
            self.get_serializer(self.get_queryset().get(id=decision.id)).data, status=status.HTTP_201_CREATED
        )
