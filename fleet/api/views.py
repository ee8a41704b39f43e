from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.response import Response

from core.api.schema import IDEMPOTENCY_HEADER
from core.api.views import OrganisationViewSet
from fleet import selectors, services
from fleet.api.filters import DriverFilter
from fleet.api.serializers import (
    DriverDetailSerializer,
    DriverSerializer,
    HubInSerializer,
    HubSerializer,
    HubUpdateSerializer,
    ZoneInSerializer,
    ZoneSerializer,
    ZoneUpdateSerializer,
)
from fleet.models import Driver, Hub, Zone


@extend_schema_view(
    list=extend_schema(tags=["drivers"]),
    retrieve=extend_schema(tags=["drivers"], responses=DriverDetailSerializer),
)
class DriverViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationViewSet):
    """Drivers with their status, vehicle and last known position. A driver sees only themself,
    with every decision about their status and its reason (the basis of an appeal)."""

    queryset = Driver.objects.none()  # for the schema only; get_queryset scopes every request
    scope_read = "drivers:read"
    filterset_class = DriverFilter

    def get_queryset(self):
        return selectors.drivers_visible_to(self.request.user, with_decisions=self.action == "retrieve")

    def get_serializer_class(self):
        return DriverDetailSerializer if self.action == "retrieve" else DriverSerializer


class FleetWriteMixin:
    """POST and PATCH through the fleet services, answering with the read shape."""

    in_serializer = update_serializer = None
    create_service = update_service = None

    def create(self, request):
        incoming = self.in_serializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        created = type(self).create_service(organisation=self.organisation, **incoming.validated_data)
        return Response(self.get_serializer(created).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        instance = self.get_object()
        incoming = self.update_serializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        updated = type(self).update_service(instance, **incoming.validated_data)
        return Response(self.get_serializer(updated).data)


def fleet_schema(read, create_in, update_in):
    return extend_schema_view(
        list=extend_schema(tags=["fleet"]),
        retrieve=extend_schema(tags=["fleet"]),
        create=extend_schema(
            tags=["fleet"], request=create_in, responses={201: read}, parameters=[IDEMPOTENCY_HEADER]
        ),
        partial_update=extend_schema(tags=["fleet"], request=update_in, responses={200: read}),
    )


@fleet_schema(HubSerializer, HubInSerializer, HubUpdateSerializer)
class HubViewSet(FleetWriteMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationViewSet):
    """Hubs (depots, stores) where orders are picked up. Writing needs `fleet:write`."""

    queryset = Hub.objects.none()  # for the schema only; get_queryset scopes every request
    serializer_class = HubSerializer
    scope_read = "fleet:read"
    scope_write = "fleet:write"
    filterset_fields = ["is_active"]
    http_method_names = ["get", "post", "patch", "head", "options"]
    in_serializer, update_serializer = HubInSerializer, HubUpdateSerializer
    create_service = staticmethod(services.create_hub)

    @staticmethod
    def update_service(hub, **changes):
        return services.update_hub(hub=hub, **changes)

    def get_queryset(self):
        return selectors.hubs_visible_to(self.request.user)


@fleet_schema(ZoneSerializer, ZoneInSerializer, ZoneUpdateSerializer)
class ZoneViewSet(FleetWriteMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationViewSet):
    """Service areas as GeoJSON polygons with the H3 cells that cover them."""

    queryset = Zone.objects.none()  # for the schema only; get_queryset scopes every request
    serializer_class = ZoneSerializer
    scope_read = "fleet:read"
    scope_write = "fleet:write"
    http_method_names = ["get", "post", "patch", "head", "options"]
    in_serializer, update_serializer = ZoneInSerializer, ZoneUpdateSerializer
    create_service = staticmethod(services.create_zone)

    @staticmethod
    def update_service(zone, **changes):
        return services.update_zone(zone=zone, **changes)

    def get_queryset(self):
        return selectors.zones_visible_to(self.request.user)
