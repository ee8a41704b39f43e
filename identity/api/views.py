from axes.helpers import get_cool_off
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from core.actors import Actor
from core.api.schema import IDEMPOTENCY_HEADER
from core.api.views import OrganisationViewSet
from identity import selectors, services
from identity.api.permissions import IsDriverAccount
from identity.api.serializers import (
    ClientInSerializer,
    ClientSerializer,
    ClientUpdateSerializer,
    DeviceSignInSerializer,
    DeviceTokenSerializer,
    IssuedDeviceTokenSerializer,
)
from identity.authentication import DRIVER_APP_AUTHENTICATION
from identity.models import Client, DeviceToken
from identity.throttling import DeviceSignInThrottle


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


@extend_schema_view(
    list=extend_schema(tags=["driver app"]),
    create=extend_schema(
        tags=["driver app"],
        auth=[],
        request=DeviceSignInSerializer,
        responses={201: IssuedDeviceTokenSerializer},
        description="Sign a device in with the driver's username and password; the answer holds "
        "its token, once. Not idempotent (a stored answer would keep the token): retry by signing "
        "in again and revoke the device you do not use.",
    ),
    destroy=extend_schema(tags=["driver app"], responses={204: None}),
)
class DeviceTokenViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """A driver's signed-in devices (`Authorization: Device frd_...`): sign one in, list them,
    revoke one. Only the driver sees their own; an organisation admin revokes in the admin."""

    queryset = DeviceToken.objects.none()  # for the schema only; get_queryset scopes every request
    serializer_class = DeviceTokenSerializer
    authentication_classes = DRIVER_APP_AUTHENTICATION
    permission_classes = [IsDriverAccount]
    pagination_class = None
    lookup_value_converter = "uuid"
    http_method_names = ["get", "post", "delete", "head", "options"]

    def _signing_in(self) -> bool:
        return getattr(self.request, "method", None) == "POST"  # no request while the schema is built

    def get_authenticators(self):
        # Signing in presents a password, not a credential: no session (so no CSRF), no token.
        return [] if self._signing_in() else super().get_authenticators()

    def get_permissions(self):
        return [AllowAny()] if self._signing_in() else super().get_permissions()

    def get_throttles(self):
        return [DeviceSignInThrottle()] if self._signing_in() else super().get_throttles()

    def get_queryset(self):
        return DeviceToken.objects.filter(user=self.request.user)

    def create(self, request):
        incoming = DeviceSignInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        django_request = request._request
        user = authenticate(django_request, username=data["username"], password=data["password"])
        if getattr(django_request, "axes_locked_out", False):
            # django-axes refused the try; answer in the API's JSON rather than its HTML page.
            django_request.axes_locked_out = False
            raise exceptions.Throttled(
                wait=get_cool_off(django_request).total_seconds(),
                detail="Too many failed sign-ins for this username or address; try again later.",
            )
        if user is None:
            raise ValidationError({"password": "Wrong username or password."})
        issued = services.issue_device_token(user=user, name=data["name"])
        body = {**DeviceTokenSerializer(issued.device_token).data, "token": issued.plaintext}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    def destroy(self, request, pk=None):
        services.revoke_device_token(device_token=self.get_object(), actor=Actor.for_user(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)
