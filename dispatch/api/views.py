from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.actors import Actor
from core.api.schema import IDEMPOTENCY_HEADER
from core.api.views import OrganisationScopedMixin, OrganisationViewSet
from dispatch import selectors
from dispatch.api.filters import OrderFilter
from dispatch.api.serializers import (
    CancelSerializer,
    DispatchSettingsInSerializer,
    DispatchSettingsSerializer,
    OrderCreateSerializer,
    OrderSerializer,
    SenderOrderDetailSerializer,
    with_api_paths,
)
from dispatch.models import Order
from dispatch.services.dispatch_settings import update_dispatch_settings
from dispatch.services.orders import create_order, transition_order


@extend_schema_view(
    list=extend_schema(tags=["orders"]),
    retrieve=extend_schema(tags=["orders"]),
    create=extend_schema(
        tags=["orders"],
        request=OrderCreateSerializer,
        responses={201: SenderOrderDetailSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    ),
    cancel=extend_schema(
        tags=["orders"],
        request=CancelSerializer,
        responses={200: SenderOrderDetailSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    ),
)
class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationViewSet):
    """Orders of the caller's organisation; a driver sees only the orders assigned to them."""

    queryset = Order.objects.none()  # for the schema only; get_queryset scopes every request
    scope_read = "orders:read"
    scope_write = "orders:write"
    filterset_class = OrderFilter

    def get_queryset(self):
        return selectors.orders_visible_to(self.request.user, with_history=self.action != "list")

    def get_serializer_class(self):
        return OrderSerializer if self.action == "list" else SenderOrderDetailSerializer

    def _detail(self, order_id, http_status=status.HTTP_200_OK) -> Response:
        order = self.get_queryset().get(id=order_id)
        return Response(SenderOrderDetailSerializer(order).data, status=http_status)

    def create(self, request):
        serializer = OrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            order = create_order(
                organisation=self.organisation,
                actor=Actor.from_request(request),
                data=serializer.to_order_input(),
                limited_to_client_id=self.client_id,
            )
        except DjangoValidationError as exc:
            raise with_api_paths(exc) from exc
        return self._detail(order.id, status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        order = self.get_object()
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        transition_order(
            order_id=order.id,
            organisation=self.organisation,
            action="cancel",
            actor=Actor.from_request(request),
            reason=serializer.validated_data["reason"],
        )
        return self._detail(order.id)


def merge_patch(target, patch):
    """RFC 7396 JSON merge patch: objects merge key by key, `null` removes a key, anything
    else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def rules_paths(error: DjangoValidationError) -> DjangoValidationError:
    """The settings service's refusal, a rules error named by its path inside the body
    (`rules.zones.mode`) rather than `rules`."""
    fields = {}
    for name, errors in error.error_dict.items():
        for item in errors:
            path = (item.params or {}).get("path") if name == "rules" else None
            key = f"rules.{path}" if path else name
            fields.setdefault(key, []).append(
                item.message.removeprefix(f"{path}: ") if path else item.message
            )
    return DjangoValidationError(fields)


@extend_schema_view(
    get=extend_schema(tags=["dispatch settings"], responses={200: DispatchSettingsSerializer}),
    put=extend_schema(
        tags=["dispatch settings"],
        request=DispatchSettingsInSerializer,
        responses={200: DispatchSettingsSerializer},
    ),
    patch=extend_schema(
        tags=["dispatch settings"],
        request=DispatchSettingsInSerializer(partial=True),
        responses={200: DispatchSettingsSerializer},
    ),
)
class DispatchSettingsView(OrganisationScopedMixin, APIView):
    """The caller's organisation's dispatch settings: the rules a round decides by, its mode
    (optimal or broadcast) and how long a driver has to answer an offer. Dispatchers read;
    organisation admins (and keys with `dispatch:write`) change them, recorded as
    `dispatch.settings_updated`. A rules error names its path (`rules.zones.mode`)."""

    scope_read = "dispatch:read"
    scope_write = "dispatch:write"

    def get(self, request):
        return Response(DispatchSettingsSerializer(selectors.dispatch_settings_of(self.organisation.id)).data)

    def put(self, request):
        return self._write(request, partial=False)

    def patch(self, request):
        return self._write(request, partial=True)

    def _write(self, request, *, partial: bool) -> Response:
        incoming = DispatchSettingsInSerializer(data=request.data, partial=partial)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        current = selectors.dispatch_settings_of(self.organisation.id)
        rules = None
        if "rules" in data:
            rules = merge_patch(current.rules, data["rules"]) if partial else data["rules"]
        if "mode" in data:
            rules = {**(current.rules if rules is None else rules), "mode": data["mode"]}
        try:
            row = update_dispatch_settings(
                organisation=self.organisation,
                rules=rules,
                offer_ttl_seconds=data.get("offer_ttl_seconds"),
                reassign_at_risk=data.get("reassign_at_risk"),
                actor=Actor.from_request(request),
            )
        except DjangoValidationError as exc:
            raise rules_paths(exc) from exc
        return Response(DispatchSettingsSerializer(row).data)
