from rest_framework import serializers

from core.api.fields import LatLonField
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
        import json

        return json.loads(zone.area.geojson)
