"""The onboarding API under /api/v1/onboarding/: the applicant's own application (session or
device token, driver accounts only), the organisation's applications and review queue (staff
by scope), and the screening provider's webhook (signed)."""

from functools import cached_property

from django.contrib.auth import login
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.idempotency import IdempotentPostMixin
from core.api.permissions import IsOrganisationMember
from core.api.schema import IDEMPOTENCY_HEADER
from core.api.views import OrganisationScopedMixin
from fleet.models import Driver
from identity.api.permissions import IsDriverAccount
from identity.authentication import DRIVER_APP_AUTHENTICATION
from onboarding import selectors, services
from onboarding.models import Application, CheckResult, Review


class CheckSerializer(serializers.ModelSerializer):
    class Meta:
        model = CheckResult
        fields = ["step", "outcome", "reason_codes", "inputs", "details", "checked_at"]


class ApplicationSerializer(serializers.ModelSerializer):
    driver_id = serializers.UUIDField(read_only=True)
    driver_status = serializers.CharField(source="driver.status", read_only=True)
    progress = serializers.SerializerMethodField()
    checks = CheckSerializer(many=True, read_only=True)
    documents = serializers.SerializerMethodField()
    consent_texts = serializers.SerializerMethodField()
    notices = serializers.SerializerMethodField()

    class Meta:
        model = Application
        fields = [
            "id",
            "driver_id",
            "driver_status",
            "status",
            "declared",
            "declared_vehicle_type",
            "liveness_challenge",
            "decision_codes",
            "decision_reason",
            "submitted_at",
            "decided_at",
            "progress",
            "checks",
            "documents",
            "consent_texts",
            "notices",
        ]

    def get_progress(self, application) -> dict:
        return selectors.progress(application)

    def get_documents(self, application) -> list:
        return [
            {
                "id": str(d.id),
                "kind": d.kind,
                "sequence": d.sequence,
                "expires_on": d.expires_on,
                "purged": bool(d.purged_at),
            }
            for d in application.documents.all()
        ]

    def get_consent_texts(self, application) -> dict:
        return {
            kind: {"version": version, "text": text}
            for kind, (version, text) in services.CONSENT_TEXTS.items()
        }

    def get_notices(self, application) -> list:
        return [
            {"kind": n.kind, "message": n.message, "expires_on": n.expires_on}
            for n in application.driver.onboarding_notices.all()
        ]


class SignUpSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, write_only=True)
    name = serializers.CharField(max_length=200)
    phone = serializers.CharField(max_length=20)
    email = serializers.EmailField()
    vehicle_type = serializers.CharField(max_length=16)
    plate = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")
    vin = serializers.CharField(max_length=17, required=False, allow_blank=True, default="")


class DetailsSerializer(serializers.Serializer):
    surname = serializers.CharField(max_length=100)
    given_names = serializers.CharField(max_length=100)
    birth_date = serializers.DateField()
    document_number = serializers.CharField(max_length=20)
    nationality = serializers.CharField(max_length=3)


class ConsentSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=24)
    text_version = serializers.CharField(max_length=32)


class DocumentUploadSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=24)
    file = serializers.FileField()
    expires_on = serializers.DateField(required=False, allow_null=True)


class AppealSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=2000)


class ResolveSerializer(serializers.Serializer):
    outcome = serializers.CharField(max_length=16)
    reason = serializers.CharField(max_length=2000)


class ReviewSerializer(serializers.ModelSerializer):
    application = ApplicationSerializer(read_only=True)
    proposed_by = serializers.CharField(source="proposed_by.username", default=None, read_only=True)
    resolved_by = serializers.CharField(source="resolved_by.username", default=None, read_only=True)

    class Meta:
        model = Review
        fields = [
            "id",
            "kind",
            "status",
            "appeal_text",
            "proposed_outcome",
            "proposed_reason",
            "proposed_by",
            "resolved_outcome",
            "resolved_reason",
            "resolved_by",
            "created_at",
            "resolved_at",
            "application",
        ]


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@extend_schema(tags=["onboarding"], request=SignUpSerializer, responses={201: ApplicationSerializer})
class SignUpView(APIView):
    """Self sign-up through an organisation's link: a driver account (signed in on return) and
    a draft application."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def post(self, request, token):
        data = _valid(SignUpSerializer, request)
        application = services.sign_up(signup_token=token, **data)
        login(request, application.driver.user, backend="django.contrib.auth.backends.ModelBackend")
        return Response(ApplicationSerializer(application).data, status=status.HTTP_201_CREATED)


class ApplicantMixin(IdempotentPostMixin, OrganisationScopedMixin):
    authentication_classes = DRIVER_APP_AUTHENTICATION
    permission_classes = [IsDriverAccount]

    @cached_property
    def driver(self) -> Driver:
        driver = Driver.objects.filter(user=self.request.user, organisation=self.organisation).first()
        if driver is None:
            raise exceptions.PermissionDenied("This account is not linked to a driver.")
        return driver

    @cached_property
    def application(self) -> Application:
        application = selectors.own_application(self.driver)
        if application is None:
            raise exceptions.NotFound("You have no application.")
        return application

    def answer(self, code=status.HTTP_200_OK) -> Response:
        return Response(ApplicationSerializer(selectors.own_application(self.driver)).data, status=code)


@extend_schema(tags=["onboarding"], responses=ApplicationSerializer)
class OwnApplicationView(ApplicantMixin, APIView):
    """The applicant's application: status, progress, each check and the reasons."""

    def get(self, request):
        return Response(ApplicationSerializer(self.application).data)


@extend_schema(
    tags=["onboarding"],
    request=DetailsSerializer,
    responses=ApplicationSerializer,
    parameters=[IDEMPOTENCY_HEADER],
)
class DetailsView(ApplicantMixin, APIView):
    def post(self, request):
        data = _valid(DetailsSerializer, request)
        data["birth_date"] = data["birth_date"].isoformat()
        services.set_details(application_id=self.application.id, driver=self.driver, details=data)
        return self.answer()


@extend_schema(
    tags=["onboarding"],
    request=ConsentSerializer,
    responses=ApplicationSerializer,
    parameters=[IDEMPOTENCY_HEADER],
)
class ConsentView(ApplicantMixin, APIView):
    def post(self, request):
        data = _valid(ConsentSerializer, request)
        services.give_consent(application_id=self.application.id, driver=self.driver, **data)
        return self.answer()


@extend_schema(
    tags=["onboarding"],
    request=DocumentUploadSerializer,
    responses={201: ApplicationSerializer},
    parameters=[IDEMPOTENCY_HEADER],
)
class DocumentUploadView(ApplicantMixin, APIView):
    """A document or photo (multipart `file`, `kind`, optional `expires_on`); liveness
    frames are posted one by one in the order taken."""

    parser_classes = [MultiPartParser]

    def post(self, request):
        data = _valid(DocumentUploadSerializer, request)
        services.add_document(
            application_id=self.application.id,
            driver=self.driver,
            kind=data["kind"],
            upload=data["file"],
            expires_on=data.get("expires_on"),
        )
        return self.answer(status.HTTP_201_CREATED)


@extend_schema(
    tags=["onboarding"], request=None, responses=ApplicationSerializer, parameters=[IDEMPOTENCY_HEADER]
)
class LivenessView(ApplicantMixin, APIView):
    """A new random challenge (blink, turn left, turn right in some order)."""

    def post(self, request):
        services.start_liveness(application_id=self.application.id, driver=self.driver)
        return self.answer()


@extend_schema(
    tags=["onboarding"], request=None, responses=ApplicationSerializer, parameters=[IDEMPOTENCY_HEADER]
)
class SubmitView(ApplicantMixin, APIView):
    def post(self, request):
        services.submit(application_id=self.application.id, driver=self.driver)
        return self.answer()


@extend_schema(
    tags=["onboarding"],
    request=AppealSerializer,
    responses={201: ApplicationSerializer},
    parameters=[IDEMPOTENCY_HEADER],
)
class AppealView(ApplicantMixin, APIView):
    def post(self, request):
        data = _valid(AppealSerializer, request)
        services.appeal(application_id=self.application.id, driver=self.driver, text=data["text"])
        return self.answer(status.HTTP_201_CREATED)


class StaffMixin(IdempotentPostMixin, OrganisationScopedMixin):
    permission_classes = [IsOrganisationMember]
    scope_read = "drivers:read"
    scope_write = "fleet:write"

    def check_permissions(self, request):
        super().check_permissions(request)
        if getattr(request.user, "client_id", None):
            raise exceptions.PermissionDenied("A client's key or user has no access to applicants.")
        if getattr(request.user, "role", None) == "driver":
            raise exceptions.PermissionDenied("Drivers use their own application's routes.")


@extend_schema(tags=["onboarding"], responses=ApplicationSerializer(many=True))
class ApplicationListView(StaffMixin, APIView):
    def get(self, request):
        rows = selectors.applications_of(self.organisation)
        wanted = request.query_params.get("status")
        if wanted:
            rows = rows.filter(status=wanted)
        return Response({"results": ApplicationSerializer(rows[:200], many=True).data})


@extend_schema(tags=["onboarding"], responses=ApplicationSerializer)
class ApplicationDetailView(StaffMixin, APIView):
    def get(self, request, pk):
        return Response(
            ApplicationSerializer(get_object_or_404(selectors.applications_of(self.organisation), pk=pk)).data
        )


@extend_schema(tags=["onboarding"], responses=ReviewSerializer(many=True))
class ReviewListView(StaffMixin, APIView):
    """The review queue: open and awaiting-second-reviewer first."""

    def get(self, request):
        return Response(
            {"results": ReviewSerializer(selectors.review_queue(self.organisation)[:200], many=True).data}
        )


@extend_schema(
    tags=["onboarding"],
    request=ResolveSerializer,
    responses=ReviewSerializer,
    parameters=[IDEMPOTENCY_HEADER],
)
class ResolveReviewView(StaffMixin, APIView):
    """Approve or deny with a reason the applicant reads (four-eyes when configured)."""

    def post(self, request, pk):
        data = _valid(ResolveSerializer, request)
        get_object_or_404(Review.objects.filter(organisation=self.organisation), pk=pk)
        if getattr(request.user, "api_key", None) is not None:
            raise exceptions.PermissionDenied("A review is decided by a person, not an API key.")
        review = services.resolve_review(
            review_id=pk,
            organisation=self.organisation,
            outcome=data["outcome"],
            reason=data["reason"],
            user=request.user,
        )
        return Response(ReviewSerializer(selectors.review_queue(self.organisation).get(pk=review.pk)).data)


@extend_schema(tags=["onboarding"], request=None, responses={200: None})
class CheckrWebhookView(APIView):
    """Checkr's report events; the HMAC-SHA256 `X-Checkr-Signature` is the authentication."""

    permission_classes = [AllowAny]
    authentication_classes = []
    parser_classes = [JSONParser, FormParser]

    def post(self, request):
        try:
            outcome = services.handle_screening_webhook(
                body=request.body, signature=request.headers.get("X-Checkr-Signature", "")
            )
        except DjangoPermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        return Response({"outcome": outcome})
