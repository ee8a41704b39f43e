"""Traffic records over the API: a feed (an API key with `traffic:manage`) or an org admin sends
speed factors and incidents; everyone with the scope lists them. Thin: dispatch.services.traffic."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from core.actors import Actor
from core.api.fields import StrictSerializer
from core.api.schema import IDEMPOTENCY_HEADER
from core.api.views import OrganisationViewSet
from dispatch.models import TrafficRecord
from dispatch.services.traffic import MAX_RECORDS, ingest_traffic


class TrafficRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrafficRecord
        fields = [
            "id",
            "source",
            "external_id",
            "kind",
            "way_id",
            "h3_cell",
            "factor",
            "valid_from",
            "valid_until",
            "description",
            "created_at",
        ]


class TrafficBatchSerializer(StrictSerializer):
    """The request body: {"source": "...", "records": [...]}; each record is checked by the
    service (format: README "Traffic feed"), errors name records[i].field."""

    source = serializers.CharField(max_length=64)
    records = serializers.ListField(child=serializers.JSONField(), allow_empty=False, max_length=MAX_RECORDS)


class TrafficIngestedSerializer(serializers.Serializer):
    records = serializers.IntegerField()
    rows = serializers.IntegerField()


@extend_schema_view(
    list=extend_schema(tags=["traffic"]),
    create=extend_schema(
        tags=["traffic"],
        request=TrafficBatchSerializer,
        responses={201: TrafficIngestedSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    ),
)
class TrafficRecordViewSet(mixins.ListModelMixin, OrganisationViewSet):
    queryset = TrafficRecord.objects.none()  # for the schema only
    serializer_class = TrafficRecordSerializer
    scope_read = "traffic:manage"
    scope_write = "traffic:manage"
    lookup_value_converter = "uuid"

    def get_queryset(self):
        return TrafficRecord.objects.filter(organisation=self.organisation).order_by("-created_at", "id")

    def create(self, request):
        body = TrafficBatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = ingest_traffic(
            organisation=self.organisation,
            source=body.validated_data["source"],
            records=body.validated_data["records"],
            actor=Actor.from_request(request),
        )
        return Response({"records": result.records, "rows": result.rows}, status=status.HTTP_201_CREATED)
