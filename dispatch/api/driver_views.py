"""The driver app's API under /api/v1/driver/: the driver themself, their offers, their orders,
and predictive dispatch's reposition suggestions to them.

Signed in by a device token (`Authorization: Device frd_...`) or a driver's session. Every
read starts from the caller's own driver record, so another driver's offer or order is a 404.
"""

from datetime import timedelta
from functools import cached_property

from django.db.models import Case, F, IntegerField, Q, Value, When
from django.utils import timezone
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.actors import Actor
from core.api.idempotency import IdempotentPostMixin
from core.api.schema import IDEMPOTENCY_HEADER
from core.api.views import OrganisationScopedMixin
from dispatch.api.serializers import (
    DeclineSerializer,
    DeliverSerializer,
    DriverOfferSerializer,
    DriverRouteSerializer,
    DriverSuggestionSerializer,
    FailSerializer,
    OrderDetailSerializer,
    OrderSerializer,
    PingBatchSerializer,
    PingSerializer,
    PingsReceivedSerializer,
    driver_route_data,
    ping_body_serializer,
    pings_of,
)
from dispatch.models import (
    DRIVER_HOLDS_STATUSES,
    Offer,
    OfferStatus,
    Order,
    OrderStatus,
    RepositionSuggestion,
    SuggestionStatus,
)
from dispatch.services.offers import accept_offer, decline_offer
from dispatch.services.orders import deliver_order, transition_order
from dispatch.services.pings import receive_pings
from dispatch.services.repositioning import answer_suggestion
from fleet.api.serializers import DriverSerializer
from fleet.models import Driver
from fleet.services import set_driver_online
from identity.api.permissions import IsDriverAccount
from identity.authentication import DRIVER_APP_AUTHENTICATION

# Answered offers stay listed (after the pending ones) this long, so the app can show them.
ANSWERED_OFFERS_SHOWN_FOR = timedelta(hours=24)
BEFORE_PICKUP = [OrderStatus.ASSIGNED, OrderStatus.EN_ROUTE_PICKUP, OrderStatus.ARRIVED_PICKUP]
# The steps a driver takes themself; delivering (with a proof) and failing (with a reason)
# have their own actions.
DRIVER_STEPS = ("start_pickup", "arrive_pickup", "pick_up", "arrive_dropoff")


class DriverAppMixin(IdempotentPostMixin, OrganisationScopedMixin):
    authentication_classes = DRIVER_APP_AUTHENTICATION
    permission_classes = [IsDriverAccount]
    pagination_class = None

    @cached_property
    def driver(self) -> Driver:
        """The caller's own driver record; an account not linked to one has nothing here."""
        driver = Driver.objects.filter(user=self.request.user, organisation=self.organisation).first()
        if driver is None:
            raise exceptions.PermissionDenied("This account is not linked to a driver.")
        return driver

    @property
    def actor(self) -> Actor:
        return Actor.for_user(self.request.user)


@extend_schema(tags=["driver app"], responses=DriverSerializer)
class DriverMeView(DriverAppMixin, APIView):
    """The driver's own profile: status, online, vehicle, last position."""

    def get(self, request):
        return Response(DriverSerializer(self.driver).data)


@extend_schema(tags=["driver app"], responses=DriverRouteSerializer)
class DriverRouteView(DriverAppMixin, APIView):
    """The driver's route: the stops still to make, in order, each with its window, ETA and
    whether it is predicted late. Pushed on the driver's socket (`route`) whenever it changes."""

    def get(self, request):
        return Response(driver_route_data(self.driver.id))


class DriverOnlineView(DriverAppMixin, APIView):
    """Go online (ready for offers; only an ACTIVE driver) or offline."""

    online = True

    @extend_schema(
        tags=["driver app"], request=None, responses=DriverSerializer, parameters=[IDEMPOTENCY_HEADER]
    )
    def post(self, request):
        driver = set_driver_online(
            driver_id=self.driver.id, organisation=self.organisation, online=self.online, actor=self.actor
        )
        return Response(DriverSerializer(driver).data)


class DriverOfflineView(DriverOnlineView):
    online = False


class DriverPingsView(DriverAppMixin, APIView):
    """GPS pings from the driver's phone: one (`{"lat": ..., "lon": ..., "recorded_at": ...}`) or
    a batch (`{"pings": [...]}`, at most 100), stored all or none. Taken while the driver is
    ACTIVE and online. The pings drive the geofences of their stops: the answer lists the
    arrivals and departures they decided."""

    @extend_schema(
        tags=["driver app"],
        request=PolymorphicProxySerializer(
            component_name="PingOrBatch",
            serializers=[PingSerializer, PingBatchSerializer],
            resource_type_field_name=None,
        ),
        responses=PingsReceivedSerializer,
        parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request):
        incoming = ping_body_serializer(request.data)
        incoming.is_valid(raise_exception=True)
        received = receive_pings(
            driver_id=self.driver.id, organisation=self.organisation, pings=pings_of(incoming)
        )
        return Response(PingsReceivedSerializer(received).data)


@extend_schema_view(
    list=extend_schema(tags=["driver app"], description="Pending offers first (soonest to expire first)."),
    retrieve=extend_schema(tags=["driver app"]),
    accept=extend_schema(
        tags=["driver app"], request=None, responses=DriverOfferSerializer, parameters=[IDEMPOTENCY_HEADER]
    ),
    decline=extend_schema(
        tags=["driver app"],
        request=DeclineSerializer,
        responses=DriverOfferSerializer,
        parameters=[IDEMPOTENCY_HEADER],
    ),
)
class DriverOfferViewSet(
    DriverAppMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Work offered to the driver. Pending offers, then those answered in the last day."""

    queryset = Offer.objects.none()  # for the schema only; get_queryset scopes every request
    serializer_class = DriverOfferSerializer
    lookup_value_converter = "uuid"

    def get_queryset(self):
        offers = Offer.objects.filter(driver=self.driver).prefetch_related("orders")
        return pending_first(offers, OfferStatus.PENDING) if self.action == "list" else offers

    def _answered(self, offer_id) -> Response:
        return Response(DriverOfferSerializer(self.get_queryset().get(id=offer_id)).data)

    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        offer = self.get_object()
        accept_offer(offer_id=offer.id, driver=self.driver, actor=self.actor)
        return self._answered(offer.id)

    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None):
        offer = self.get_object()
        incoming = DeclineSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        decline_offer(offer_id=offer.id, driver=self.driver, actor=self.actor, **incoming.validated_data)
        return self._answered(offer.id)


def pending_first(queryset, pending_status):
    """Pending rows first (soonest to expire first), then the answered ones of the last day."""
    recent = timezone.now() - ANSWERED_OFFERS_SHOWN_FOR
    return queryset.filter(Q(status=pending_status) | Q(created_at__gte=recent)).order_by(
        Case(When(status=pending_status, then=Value(0)), default=Value(1), output_field=IntegerField()),
        "expires_at",
        "-created_at",
    )


def answer_schema():
    return extend_schema(
        tags=["driver app"],
        request=None,
        responses=DriverSuggestionSerializer,
        parameters=[IDEMPOTENCY_HEADER],
    )


@extend_schema_view(
    list=extend_schema(
        tags=["driver app"],
        description="Pending suggestions first (soonest to expire first), then those of the last day.",
    ),
    retrieve=extend_schema(tags=["driver app"]),
    accept=answer_schema(),
    dismiss=answer_schema(),
)
class DriverSuggestionViewSet(
    DriverAppMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Predictive dispatch's advice to move toward expected orders, each with its reason. Advice
    only: answering changes nothing about the driver's offers or status."""

    queryset = RepositionSuggestion.objects.none()  # for the schema only
    serializer_class = DriverSuggestionSerializer
    lookup_value_converter = "uuid"

    def get_queryset(self):
        suggestions = RepositionSuggestion.objects.filter(driver=self.driver)
        return pending_first(suggestions, SuggestionStatus.PENDING) if self.action == "list" else suggestions

    def _answer(self, action_name: str) -> Response:
        suggestion = self.get_object()
        answered = answer_suggestion(
            suggestion_id=suggestion.id, driver=self.driver, action=action_name, actor=self.actor
        )
        return Response(DriverSuggestionSerializer(answered).data)

    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        return self._answer("accept")

    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        return self._answer("dismiss")


def step_schema(request=None):
    return extend_schema(
        tags=["driver app"], request=request, responses=OrderDetailSerializer, parameters=[IDEMPOTENCY_HEADER]
    )


@extend_schema_view(
    list=extend_schema(
        tags=["driver app"],
        description="The driver's current orders by their next stop: an order not yet picked up "
        "by its pickup window's start, a picked-up one by its drop-off window's end.",
    ),
    retrieve=extend_schema(tags=["driver app"], responses=OrderDetailSerializer),
    **{step: step_schema() for step in DRIVER_STEPS},
    fail=step_schema(FailSerializer),
    deliver=step_schema(DeliverSerializer),
)
class DriverOrderViewSet(
    DriverAppMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The driver's orders and the steps they take with each, in the order's one state machine."""

    queryset = Order.objects.none()  # for the schema only; get_queryset scopes every request
    lookup_value_converter = "uuid"

    def get_serializer_class(self):
        return OrderSerializer if self.action == "list" else OrderDetailSerializer

    def get_queryset(self):
        orders = Order.objects.filter(organisation=self.organisation, driver=self.driver)
        if self.action == "list":
            orders = orders.filter(status__in=DRIVER_HOLDS_STATUSES).order_by(
                Case(
                    When(status__in=BEFORE_PICKUP, then=F("pickup_window_start")),
                    default=F("dropoff_window_end"),
                ),
                "dropoff_window_end",
                "id",
            )
        return orders

    def _step(self, action_name: str, reason: str = "") -> Response:
        order = self.get_object()
        transition_order(
            order_id=order.id,
            organisation=self.organisation,
            action=action_name,
            actor=self.actor,
            reason=reason,
            held_by=self.driver,
        )
        return Response(OrderDetailSerializer(self.get_queryset().get(id=order.id)).data)

    @action(detail=True, methods=["post"])
    def start_pickup(self, request, pk=None):
        return self._step("start_pickup")

    @action(detail=True, methods=["post"])
    def arrive_pickup(self, request, pk=None):
        return self._step("arrive_pickup")

    @action(detail=True, methods=["post"])
    def pick_up(self, request, pk=None):
        return self._step("pick_up")

    @action(detail=True, methods=["post"])
    def arrive_dropoff(self, request, pk=None):
        return self._step("arrive_dropoff")

    @action(detail=True, methods=["post"])
    def fail(self, request, pk=None):
        incoming = FailSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        return self._step("fail", incoming.validated_data["reason"])

    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser])
    def deliver(self, request, pk=None):
        order = self.get_object()
        incoming = DeliverSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        deliver_order(
            order_id=order.id,
            organisation=self.organisation,
            driver=self.driver,
            actor=self.actor,
            location=incoming.location(),
            captured_at=data["captured_at"],
            photo=data.get("photo"),
            signature=data.get("signature"),
            recipient_name=data["recipient_name"],
            accuracy_m=data.get("accuracy_m"),
        )
        return Response(OrderDetailSerializer(self.get_queryset().get(id=order.id)).data)
