from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.response import Response

from core.api.schema import IDEMPOTENCY_HEADER
from core.api.views import OrganisationViewSet
from identity import selectors, services
from identity.api.serializers import ClientInSerializer, ClientSerializer, ClientUpdateSerializer
from identity.models import Client


@extend_schema_view(
    list=extend_schema(tags=["clients"]),
    retrieve=extend_schema(tags=["clients"]),
    create=extend_schema(
        tags=["clients"],
        request=ClientInSerializer,
        responses={201: ClientSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    ),
    partial_update=extend_schema(
        tags=["clients"], request=ClientUpdateSerializer, responses={200: ClientSerializer}
    ),
)
class ClientViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationViewSet):
    """The retailers a 3PL delivers for. An order names its client (`client_id`); a key limited
    to a client (see `create_api_key --client`) sees only that client's orders and events."""

    queryset = Client.objects.none()  # for the schema only; get_queryset scopes every request
    serializer_class = ClientSerializer
    scope_read = scope_write = "clients:manage"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.clients_visible_to(self.request.user)

    def create(self, request):
        incoming = ClientInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        client = services.create_client(organisation=self.organisation, **incoming.validated_data)
        return Response(ClientSerializer(client).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        incoming = ClientUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        client = services.update_client(client=self.get_object(), **incoming.validated_data)
        return Response(ClientSerializer(client).data)
