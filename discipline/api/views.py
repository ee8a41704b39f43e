"""The discipline API: the organisation's rules (`/api/v1/discipline-rules`), the review queue
(`/api/v1/discipline/reviews`), and the driver's own decision record with appeals
(`/api/v1/driver/decisions`)."""

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
    AppealSerializer,
    DriverRecordSerializer,
    ResolveSerializer,
    ReviewSerializer,
    RuleSetSerializer,
    RulesInSerializer,
)
from discipline.models import DisciplineDecision, DisciplineReview
from dispatch.api.driver_views import DriverAppMixin
from dispatch.api.views import merge_patch
from fleet.models import DriverStatusChange


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
        request=ResolveSerializer,
        responses=ReviewSerializer,
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
    serializer_class = ReviewSerializer
    scope_read = "discipline:read"
    scope_write = "discipline:review"
    filterset_fields = ["status", "kind"]

    def get_queryset(self):
        return selectors.review_queue(self.organisation)

    def _resolve(self, request, outcome: str) -> Response:
        review = self.get_object()
        by_a_person(request)
        incoming = ResolveSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        services.resolve_review(
            review_id=review.id,
            organisation=self.organisation,
            outcome=outcome,
            reason=incoming.validated_data["reason"],
            user=request.user,
        )
        return Response(ReviewSerializer(self.get_queryset().get(id=review.id)).data)

    @action(detail=True, methods=["post"])
    def lift(self, request, pk=None):
        return self._resolve(request, "lift")

    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        return self._resolve(request, "confirm")


class NotAppealableHere(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "not_appealable"
    default_detail = (
        "This decision was not made by a discipline rule; an onboarding decision is appealed "
        "through your application, anything else by asking your organisation."
    )


@extend_schema_view(
    list=extend_schema(tags=["driver app"], description="Every decision about the driver, newest first."),
    retrieve=extend_schema(tags=["driver app"]),
    appeal=extend_schema(
        tags=["driver app"],
        request=AppealSerializer,
        responses={201: DriverRecordSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    ),
)
class DriverDecisionViewSet(
    DriverAppMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The driver's decision record: every decision about them (approved, suspended, warned,
    work taken away...), each with its reason; a discipline rule's decision carries its rule
    and version, exactly what it counted and left out, its explanation and its reviews, and can
    be appealed (`POST .../{id}/appeal {"text"}`): a person reviews it."""

    queryset = DriverStatusChange.objects.none()  # for the schema only
    serializer_class = DriverRecordSerializer
    lookup_value_converter = "int"

    def get_queryset(self):
        return selectors.decision_record(self.driver)

    @action(detail=True, methods=["post"])
    def appeal(self, request, pk=None):
        record = self.get_object()
        incoming = AppealSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            decision = selectors.decision_of_record(self.driver, record.id)
        except DisciplineDecision.DoesNotExist:
            raise NotAppealableHere() from None
        services.appeal(decision_id=decision.id, driver=self.driver, text=incoming.validated_data["text"])
        return Response(
            self.get_serializer(self.get_queryset().get(id=record.id)).data, status=status.HTTP_201_CREATED
        )
