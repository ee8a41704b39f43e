"""Order API shapes. Input is strict (unknown fields refused) and nested, so errors name
the exact field (e.g. `pickup.window.end`)."""

from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.fields import AwareDateTimeField, NumberField, StrictSerializer, WindowField
from core.geo import coordinate_errors, make_point, point_as_dict
from core.validators import e164_phone
from dispatch.engine.geofence import DEFAULT_RADIUS_M
from dispatch.engine.rules import MODES
from dispatch.models import (
    GEOFENCE_MAX_M,
    GEOFENCE_MIN_M,
    Offer,
    OfferStatus,
    Order,
    OrderStatus,
    OrderTransition,
    Priority,
    ProofOfDelivery,
    RepositionSuggestion,
    Route,
    Stop,
    SuggestionStatus,
)
from dispatch.proof_links import proof_payload
from dispatch.rating_links import rating_link_payload
from dispatch.services.dispatch_settings import rules_for
from dispatch.services.orders import OrderInput
from dispatch.services.pings import MAX_PINGS_PER_REQUEST
from fleet.services import PingInput, validate_ping

PRIORITY_NAMES = {p.value: p.name.lower() for p in Priority}

# The order services name the model's fields; the API names the place in the body instead.
API_PATH_OF_ORDER_FIELD = {
    **{
        f"{leg}_{part}": f"{leg}{path}"
        for leg in ("pickup", "dropoff")
        for part, path in (
            ("location", ""),  # the place as a whole: lat and lon together
            ("address", ".address"),
            ("window_start", ".window.start"),
            ("window_end", ".window.end"),
        )
    },
    **{f"recipient_{part}": f"recipient.{part}" for part in ("name", "phone", "email")},
    "client": "client_id",
    "hub": "hub_id",
}


def with_api_paths(error: DjangoValidationError) -> DjangoValidationError:
    """A service's refusal of an order, its fields renamed to the body's dotted paths."""
    if not hasattr(error, "error_dict"):
        return error
    return DjangoValidationError(
        {API_PATH_OF_ORDER_FIELD.get(name, name): messages for name, messages in error.message_dict.items()}
    )


class PlaceInSerializer(StrictSerializer):
    address = serializers.CharField(max_length=300)
    lat = NumberField()
    lon = NumberField()
    window = WindowField()
    # The stop's geofence radius, for a place larger than a door (a yard, a campus); default 50 m.
    geofence_m = serializers.IntegerField(
        required=False, allow_null=True, min_value=GEOFENCE_MIN_M, max_value=GEOFENCE_MAX_M
    )

    def validate(self, attrs):
        errors = coordinate_errors(lat=attrs["lat"], lon=attrs["lon"])
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class RecipientSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=20, validators=[e164_phone])
    email = serializers.EmailField(required=False, allow_blank=True)


class OrderCreateSerializer(StrictSerializer):
    external_ref = serializers.RegexField(r"^[\w.:/#-]{1,100}$", max_length=100)
    client_id = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="The client (retailer) the order is for. A client-limited key may leave it out.",
    )
    hub_id = serializers.UUIDField(required=False, allow_null=True)
    pickup = PlaceInSerializer()
    dropoff = PlaceInSerializer()
    weight_kg = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=Decimal("0"), required=False, default=Decimal("0")
    )
    volume_litres = serializers.DecimalField(
        max_digits=9, decimal_places=2, min_value=Decimal("0"), required=False, default=Decimal("0")
    )
    declared_value_minor = serializers.IntegerField(min_value=0, required=False, default=0)
    tip_minor = serializers.IntegerField(min_value=0, required=False, default=0)
    currency = serializers.RegexField(r"^[A-Z]{3}$", required=False)
    priority = serializers.ChoiceField(
        choices=list(PRIORITY_NAMES.values()), required=False, default="normal"
    )
    recipient = RecipientSerializer()
    notes = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if attrs["dropoff"]["window"]["end"] <= attrs["pickup"]["window"]["start"]:
            raise serializers.ValidationError(
                {"dropoff": {"window": {"end": ["Must be after the pickup window starts."]}}}
            )
        return attrs

    def to_order_input(self) -> OrderInput:
        data = self.validated_data
        pickup, dropoff, recipient = data["pickup"], data["dropoff"], data["recipient"]
        return OrderInput(
            external_ref=data["external_ref"],
            client_id=data.get("client_id"),
            hub_id=data.get("hub_id"),
            pickup_address=pickup["address"],
            pickup_location=make_point(lat=pickup["lat"], lon=pickup["lon"]),
            pickup_window_start=pickup["window"]["start"],
            pickup_window_end=pickup["window"]["end"],
            dropoff_address=dropoff["address"],
            dropoff_location=make_point(lat=dropoff["lat"], lon=dropoff["lon"]),
            dropoff_window_start=dropoff["window"]["start"],
            dropoff_window_end=dropoff["window"]["end"],
            pickup_geofence_m=pickup.get("geofence_m"),
            dropoff_geofence_m=dropoff.get("geofence_m"),
            weight_kg=data["weight_kg"],
            volume_litres=data["volume_litres"],
            declared_value_minor=data["declared_value_minor"],
            tip_minor=data["tip_minor"],
            currency=data.get("currency", ""),
            priority=Priority[data["priority"].upper()].value,
            recipient_name=recipient["name"],
            recipient_phone=recipient.get("phone", ""),
            recipient_email=recipient.get("email", ""),
            notes=data["notes"],
        )


@extend_schema_field(
    {"type": "string", "enum": OrderStatus.values, "description": "Where the order is in its lifecycle."},
    component_name="OrderStatus",
)
class OrderStatusField(serializers.ChoiceField):
    """An order status; one named enum in the schema wherever it appears."""

    def __init__(self, **kwargs) -> None:
        super().__init__(choices=OrderStatus.choices, **kwargs)


class CancelSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=1000)


class OrderTransitionSerializer(serializers.ModelSerializer):
    from_status = OrderStatusField(read_only=True)
    to_status = OrderStatusField(read_only=True)
    actor = serializers.SerializerMethodField()

    class Meta:
        model = OrderTransition
        fields = [
            "action",
            "from_status",
            "to_status",
            "driver",
            "actor",
            "reason",
            "is_override",
            "occurred_at",
        ]

    def get_actor(self, transition) -> dict:
        return {"type": transition.actor_type, "label": transition.actor_label}


def place_of(order: Order, leg: str) -> dict:
    """An order's pickup or drop-off as the API shows it: address, lat/lon and window."""
    return {
        "address": getattr(order, f"{leg}_address"),
        **point_as_dict(getattr(order, f"{leg}_location")),
        "window": {
            "start": getattr(order, f"{leg}_window_start").isoformat(),
            "end": getattr(order, f"{leg}_window_end").isoformat(),
        },
        "geofence_m": getattr(order, f"{leg}_geofence_m") or DEFAULT_RADIUS_M,
    }


class OrderSerializer(serializers.ModelSerializer):
    status = OrderStatusField(read_only=True)
    client_id = serializers.UUIDField(read_only=True, allow_null=True)
    driver_id = serializers.UUIDField(read_only=True, allow_null=True)
    hub_id = serializers.UUIDField(read_only=True, allow_null=True)
    pickup = serializers.SerializerMethodField()
    dropoff = serializers.SerializerMethodField()
    recipient = serializers.SerializerMethodField()
    priority = serializers.SerializerMethodField()
    attention = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "external_ref",
            "client_id",
            "status",
            "driver_id",
            "hub_id",
            "pickup",
            "dropoff",
            "weight_kg",
            "volume_litres",
            "declared_value_minor",
            "tip_minor",
            "currency",
            "priority",
            "recipient",
            "notes",
            "attention",
            "created_at",
            "updated_at",
        ]

    def get_pickup(self, order) -> dict:
        return place_of(order, "pickup")

    def get_dropoff(self, order) -> dict:
        return place_of(order, "dropoff")

    def get_recipient(self, order) -> dict:
        return {"name": order.recipient_name, "phone": order.recipient_phone, "email": order.recipient_email}

    def get_priority(self, order) -> str:
        return PRIORITY_NAMES[order.priority]

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {
                "reason": {"type": "string"},
                "raised_at": {"type": "string", "format": "date-time"},
            },
        }
    )
    def get_attention(self, order) -> dict | None:
        """Why the order needs a dispatcher's decision, or null."""
        if not order.attention_reason:
            return None
        return {"reason": order.attention_reason, "raised_at": order.attention_raised_at.isoformat()}


class OrderDetailSerializer(OrderSerializer):
    history = OrderTransitionSerializer(source="transitions", many=True, read_only=True)
    proof_of_delivery = serializers.SerializerMethodField()
    rating_link = serializers.SerializerMethodField()

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "history", "proof_of_delivery", "rating_link"]

    @extend_schema_field({"type": "object", "nullable": True})
    def get_proof_of_delivery(self, order) -> dict | None:
        """Where, when and who signed, with signed links to the images that expire."""
        proof = ProofOfDelivery.objects.filter(order=order).first()
        return proof_payload(proof) if proof else None

    @extend_schema_field({"type": "object", "nullable": True})
    def get_rating_link(self, order) -> dict | None:
        """For the recipient: a signed link to rate the delivery (no login), and until when it opens."""
        return rating_link_payload(order)


# --- the driver app -------------------------------------------------------------------------


class OfferedOrderSerializer(serializers.ModelSerializer):
    """An order as a driver sees it before accepting: where, when and what, not for whom."""

    pickup = serializers.SerializerMethodField()
    dropoff = serializers.SerializerMethodField()
    priority = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = ["id", "external_ref", "pickup", "dropoff", "weight_kg", "volume_litres", "priority"]

    def get_pickup(self, order) -> dict:
        return place_of(order, "pickup")

    def get_dropoff(self, order) -> dict:
        return place_of(order, "dropoff")

    def get_priority(self, order) -> str:
        return PRIORITY_NAMES[order.priority]


class DriverOfferSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=OfferStatus.choices, read_only=True)
    orders = OfferedOrderSerializer(many=True, read_only=True)
    # Why dispatch offered this work to this driver, as the round explained it.
    explanation = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Offer
        fields = [
            "id",
            "status",
            "incentive_minor",
            "currency",
            "attempt",
            "expires_at",
            "responded_at",
            "reason",
            "explanation",
            "created_at",
            "orders",
        ]


class RouteStopSerializer(serializers.ModelSerializer):
    """One stop of the driver's route: where, what, its window, the ETA and whether it is late."""

    order_id = serializers.UUIDField(read_only=True)
    external_ref = serializers.CharField(source="order.external_ref", read_only=True)
    order_status = OrderStatusField(source="order.status", read_only=True)
    address = serializers.SerializerMethodField()
    location = serializers.SerializerMethodField()
    window = serializers.SerializerMethodField()
    eta = serializers.DateTimeField(source="planned_arrival_at", read_only=True, allow_null=True)
    at_risk = serializers.SerializerMethodField()

    class Meta:
        model = Stop
        fields = [
            "sequence",
            "kind",
            "order_id",
            "external_ref",
            "order_status",
            "address",
            "location",
            "window",
            "service_s",
            "eta",
            "predicted_late_s",
            "at_risk",
            "arrived_at",
        ]

    def get_address(self, stop) -> str:
        return stop.order.pickup_address if stop.kind == Stop.Kind.PICKUP else stop.order.dropoff_address

    @extend_schema_field(
        {"type": "object", "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}}}
    )
    def get_location(self, stop) -> dict:
        return point_as_dict(stop.location)

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                "start": {"type": "string", "format": "date-time"},
                "end": {"type": "string", "format": "date-time"},
            },
        }
    )
    def get_window(self, stop) -> dict:
        return {"start": stop.window_start.isoformat(), "end": stop.window_end.isoformat()}

    def get_at_risk(self, stop) -> bool:
        return stop.at_risk_since is not None


class DriverRouteSerializer(serializers.Serializer):
    """The driver's active route: the stops still to make, in the order to make them."""

    id = serializers.UUIDField(allow_null=True)
    etas_at = serializers.DateTimeField(allow_null=True)
    sequenced_by = serializers.CharField()
    stops = RouteStopSerializer(many=True)


def driver_route_data(driver_id) -> dict:
    """The driver's active route as the API and the driver's socket show it (no route: none)."""
    route = Route.objects.filter(driver_id=driver_id, status=Route.Status.ACTIVE).first()
    stops = (
        Stop.objects.filter(route=route, completed_at=None).select_related("order").order_by("sequence")
        if route
        else Stop.objects.none()
    )
    return DriverRouteSerializer(
        {
            "id": route.id if route else None,
            "etas_at": route.etas_at if route else None,
            "sequenced_by": route.sequenced_by if route else "",
            "stops": stops,
        }
    ).data


class DriverSuggestionSerializer(serializers.ModelSerializer):
    """A reposition suggestion as its driver sees it: where to, why (in words), and what the
    decision was made from."""

    status = serializers.ChoiceField(choices=SuggestionStatus.choices, read_only=True)
    target = serializers.SerializerMethodField()
    slot = serializers.SerializerMethodField()
    inputs = serializers.JSONField(read_only=True)

    class Meta:
        model = RepositionSuggestion
        fields = [
            "id",
            "status",
            "target",
            "cell",
            "distance_m",
            "expected_orders",
            "drivers_near",
            "slot",
            "reason",
            "inputs",
            "incentive_minor",
            "currency",
            "expires_at",
            "responded_at",
            "created_at",
        ]

    @extend_schema_field(
        {"type": "object", "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}}}
    )
    def get_target(self, suggestion) -> dict:
        return point_as_dict(suggestion.target)

    @extend_schema_field(
        {"type": "object", "properties": {"start": {"type": "string"}, "end": {"type": "string"}}}
    )
    def get_slot(self, suggestion) -> dict:
        return {"start": suggestion.slot_start.isoformat(), "end": suggestion.slot_end.isoformat()}


class DeclineSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class FailSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=1000)


class DeliverSerializer(StrictSerializer):
    """A proof of delivery, sent as multipart: a photo and/or a signature, where and when."""

    photo = serializers.FileField(required=False)
    signature = serializers.FileField(required=False)
    lat = serializers.FloatField()
    lon = serializers.FloatField()
    accuracy_m = serializers.FloatField(required=False, allow_null=True, min_value=0)
    captured_at = AwareDateTimeField()
    recipient_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        errors = coordinate_errors(lat=attrs["lat"], lon=attrs["lon"])
        if errors:
            raise serializers.ValidationError(errors)
        if "photo" not in attrs and "signature" not in attrs:
            raise serializers.ValidationError({"photo": ["A photo or a signature is needed."]})
        return attrs

    def location(self):
        return make_point(lat=self.validated_data["lat"], lon=self.validated_data["lon"])


class PingSerializer(StrictSerializer):
    """One GPS fix from the driver's phone; `recorded_at` is the phone's clock."""

    lat = NumberField()
    lon = NumberField()
    accuracy_m = NumberField(required=False, allow_null=True)
    speed_mps = NumberField(required=False, allow_null=True)
    heading_deg = NumberField(required=False, allow_null=True)
    recorded_at = AwareDateTimeField()

    def validate(self, attrs):
        ping = PingInput(**attrs)
        try:
            validate_ping(ping, now=timezone.now())
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return ping


class PingBatchSerializer(StrictSerializer):
    """Up to MAX_PINGS_PER_REQUEST pings at once (a phone that buffered them), all or none."""

    pings = PingSerializer(many=True, allow_empty=False, max_length=MAX_PINGS_PER_REQUEST)


def ping_body_serializer(data):
    """A body is one ping (`{"lat": ...}`) or a batch (`{"pings": [...]}`)."""
    if isinstance(data, dict) and "pings" in data:
        return PingBatchSerializer(data=data)
    return PingSerializer(data=data)


def pings_of(serializer) -> list:
    data = serializer.validated_data
    return data["pings"] if isinstance(serializer, PingBatchSerializer) else [data]


class GeofenceChangeSerializer(serializers.Serializer):
    order_id = serializers.UUIDField()
    stop = serializers.CharField(source="kind")
    event = serializers.ChoiceField(choices=["arrived", "left"])
    at = serializers.DateTimeField()


class PingsReceivedSerializer(serializers.Serializer):
    stored = serializers.IntegerField()
    geofence = GeofenceChangeSerializer(source="changes", many=True)


# --- Dispatch settings ------------------------------------------------------------------------


class DispatchSettingsSerializer(serializers.Serializer):
    """An organisation's dispatch settings as the API shows them."""

    rules = serializers.JSONField(help_text="The rules document (see the README's matching section).")
    mode = serializers.SerializerMethodField(help_text="How a round offers work: optimal or broadcast.")
    offer_ttl_seconds = serializers.IntegerField(help_text="How long a driver has to answer an offer.")
    reassign_at_risk = serializers.BooleanField(
        help_text="Whether the SLA watch may hand work at risk of being late back to matching."
    )
    updated_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.ChoiceField(choices=MODES))
    def get_mode(self, row) -> str:
        return rules_for(row).mode


class DispatchSettingsInSerializer(StrictSerializer):
    """PUT: `rules` and `offer_ttl_seconds` replace the stored ones (`mode`, if given, is set
    in the rules). PATCH (partial): only what is given changes; `rules` is a JSON merge patch
    (RFC 7396) onto the stored rules, so `{"rules": {"mode": "broadcast"}}` changes one key and
    a `null` removes one."""

    rules = serializers.DictField(
        help_text="The rules document (PUT), or a JSON merge patch onto it (PATCH)."
    )
    mode = serializers.ChoiceField(choices=MODES, required=False, help_text="Sets `rules.mode`.")
    offer_ttl_seconds = serializers.IntegerField(
        help_text="Seconds a driver has to answer an offer (the service checks the range)."
    )
    reassign_at_risk = serializers.BooleanField(
        required=False, help_text="Whether the SLA watch may reassign work at risk (default false)."
    )
