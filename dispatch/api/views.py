from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core.actors import Actor
from core.api.schema import IDEMPOTENCY_HEADER
from core.api.views import OrganisationViewSet
from dispatch import selectors
from dispatch.api.filters import OrderFilter
from dispatch.api.serializers import (
    CancelSerializer,
    OrderCreateSerializer,
    OrderDetailSerializer,
    OrderSerializer,
    with_api_paths,
)
from dispatch.models import Order
from dispatch.services.orders import create_order, transition_order


@extend_schema_view(
    list=extend_schema(tags=["orders"]),
    retrieve=extend_schema(tags=["orders"]),
    create=extend_schema(
        tags=["orders"],
        request=OrderCreateSerializer,
        responses={201: OrderDetailSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    ),
    cancel=extend_schema(
        tags=["orders"],
        request=CancelSerializer,
        responses={200: OrderDetailSerializer},
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
        return OrderSerializer if self.action == "list" else OrderDetailSerializer

    def _detail(self, order_id, http_status=status.HTTP_200_OK) -> Response:
        order = self.get_queryset().get(id=order_id)
        return Response(OrderDetailSerializer(order).data, status=http_status)

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
