from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from core.api.views import OrganisationViewSet
from fleet import selectors
from fleet.api.filters import DriverFilter
from fleet.api.serializers import DriverDetailSerializer, DriverSerializer, HubSerializer, ZoneSerializer
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


@extend_schema_view(list=extend_schema(tags=["fleet"]), retrieve=extend_schema(tags=["fleet"]))
class HubViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationViewSet):
    queryset = Hub.objects.none()  # for the schema only; get_queryset scopes every request
    serializer_class = HubSerializer
    scope_read = "fleet:read"
    filterset_fields = ["is_active"]

    def get_queryset(self):
        return selectors.hubs_visible_to(self.request.user)


@extend_schema_view(list=extend_schema(tags=["fleet"]), retrieve=extend_schema(tags=["fleet"]))
class ZoneViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationViewSet):
    queryset = Zone.objects.none()  # for the schema only; get_queryset scopes every request
    serializer_class = ZoneSerializer
    scope_read = "fleet:read"

    def get_queryset(self):
        return selectors.zones_visible_to(self.request.user)
