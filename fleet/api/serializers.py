import json

from django.contrib.gis.geos import GEOSException, GEOSGeometry
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.fields import LatLonField, StrictSerializer
from core.geo import coordinate_errors
from fleet.models import Driver, DriverStatusChange, Hub, Vehicle, Zone


class VehicleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Vehicle
        fields = ["id", "type", "capacity_kg", "capacity_litres", "plate"]


class DriverSerializer(serializers.ModelSerializer):
    last_location = LatLonField(read_only=True, allow_null=True)
    vehicle = serializers.SerializerMethodField()
    preferred_zone_ids = serializers.SerializerMethodField()

    class Meta:
        model = Driver
        fields = [
            "id",
            "name",
            "fleet_type",
            "status",
            "is_online",
            "hub",
            "home_zone",
            "preferred_zone_ids",
            "last_location",
            "last_seen_at",
            "vehicle",
            "created_at",
        ]

    def get_vehicle(self, driver) -> dict | None:
        vehicles = getattr(driver, "active_vehicles", None)
        if vehicles is None:
            vehicles = list(driver.vehicles.filter(is_active=True))
        return VehicleSerializer(vehicles[0]).data if vehicles else None

    def get_preferred_zone_ids(self, driver) -> list[str]:
        return [str(zone.id) for zone in driver.preferred_zones.all()]


class DriverDecisionSerializer(serializers.ModelSerializer):
    """A decision about the driver as they see it: what changed, who or what decided, why."""

    decided_by = serializers.SerializerMethodField()

    class Meta:
        model = DriverStatusChange
        fields = ["from_status", "to_status", "reason", "decided_by", "is_override", "occurred_at"]

    def get_decided_by(self, change) -> str:
        return "automated rule" if change.actor_type == "system" else "a person"


class DriverDetailSerializer(DriverSerializer):
    decisions = DriverDecisionSerializer(source="status_changes", many=True, read_only=True)

    class Meta(DriverSerializer.Meta):
        fields = [*DriverSerializer.Meta.fields, "decisions"]


class HubSerializer(serializers.ModelSerializer):
    location = LatLonField(read_only=True)

    class Meta:
        model = Hub
        fields = ["id", "name", "address", "location", "is_active", "created_at"]


class ZoneSerializer(serializers.ModelSerializer):
    area = serializers.SerializerMethodField()

    class Meta:
        model = Zone
        fields = ["id", "name", "h3_resolution", "h3_cells", "area", "created_at"]

    def get_area(self, zone) -> dict:
        return json.loads(zone.area.geojson)


class HubInSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    address = serializers.CharField(max_length=300)
    location = LatLonField()
    is_active = serializers.BooleanField(required=False, default=True)


class HubUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    address = serializers.CharField(max_length=300, required=False)
    location = LatLonField(required=False)
    is_active = serializers.BooleanField(required=False)


@extend_schema_field(
    {
        "type": "object",
        "description": "A GeoJSON Polygon or MultiPolygon in WGS84 ([lon, lat] positions).",
        "properties": {
            "type": {"type": "string", "enum": ["Polygon", "MultiPolygon"]},
            "coordinates": {"type": "array", "items": {}},
        },
        "required": ["type", "coordinates"],
    }
)
class GeoJSONAreaField(serializers.Field):
    """A GeoJSON Polygon or MultiPolygon -> a GEOS geometry in SRID 4326, positions checked."""

    default_error_messages = {
        "type": "Give a GeoJSON object with type Polygon or MultiPolygon.",
        "position": "Every position must be [lon, lat] within [-180, 180] and [-90, 90].",
        "invalid": "Not a valid polygon: {reason}.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict) or data.get("type") not in ("Polygon", "MultiPolygon"):
            self.fail("type")
        if set(data) - {"type", "coordinates"}:
            raise serializers.ValidationError("Only 'type' and 'coordinates' are allowed.")
        depth = 3 if data["type"] == "Polygon" else 4
        positions = _positions(data.get("coordinates"), depth)
        if positions is None or not positions:
            self.fail("type")
        for position in positions:
            if len(position) != 2 or coordinate_errors(lon=position[0], lat=position[1]):
                self.fail("position")
        if len(positions) > MAX_AREA_POSITIONS:
            raise serializers.ValidationError(f"At most {MAX_AREA_POSITIONS} positions.")
        try:
            return GEOSGeometry(json.dumps(data), srid=4326)
        except (GEOSException, ValueError, TypeError) as exc:
            self.fail("invalid", reason=str(exc) or "rings must be closed, with at least 4 positions")

    def to_representation(self, value):
        return json.loads(value.geojson)


MAX_AREA_POSITIONS = 10_000


def _positions(coordinates, depth: int) -> list | None:
    """The [lon, lat] positions of a GeoJSON coordinates array nested `depth` deep."""
    if not isinstance(coordinates, list):
        return None
    if depth == 1:
        return [coordinates]
    found = []
    for item in coordinates:
        inner = _positions(item, depth - 1)
        if inner is None:
            return None
        found.extend(inner)
    return found


class ZoneInSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    area = GeoJSONAreaField()
    h3_resolution = serializers.IntegerField(min_value=0, max_value=15, required=False, default=9)


class ZoneUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    area = GeoJSONAreaField(required=False)
    h3_resolution = serializers.IntegerField(min_value=0, max_value=15, required=False)
