"""Serializer building blocks shared by every API: strict bodies, aware times, lat/lon."""

import math
from datetime import UTC

from rest_framework import serializers

from core.geo import coordinate_errors, make_point, point_as_dict


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo is an error rather than silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that must carry its UTC offset; stored and returned in UTC."""

    default_error_messages = {"naive": "Give a UTC offset (e.g. 2026-01-01T12:00:00Z)."}

    def to_internal_value(self, value):
        if isinstance(value, str) and value.strip():
            parsed = super().to_internal_value(value)
            text = value.strip()
            has_offset = text.endswith(("Z", "z")) or "+" in text[10:] or "-" in text[10:]
            if not has_offset:
                self.fail("naive")
            return parsed.astimezone(UTC)
        return super().to_internal_value(value)


class NumberField(serializers.FloatField):
    """A JSON number: not a boolean (`true` is not 1.0), not a string, finite."""

    default_error_messages = {"invalid": "A number is required.", "not_finite": "Must be a finite number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        try:
            number = float(data)  # a JSON integer may be too large for a float
        except OverflowError:
            self.fail("not_finite")
        if not math.isfinite(number):
            self.fail("not_finite")
        return super().to_internal_value(number)


class LatLonField(StrictSerializer):
    """{"lat": 60.17, "lon": 24.94} <-> a WGS84 Point, checked by core.geo's one rule."""

    lat = NumberField()
    lon = NumberField()

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        errors = coordinate_errors(lat=values["lat"], lon=values["lon"])
        if errors:
            raise serializers.ValidationError(errors)
        return make_point(lat=values["lat"], lon=values["lon"])

    def to_representation(self, instance):
        return point_as_dict(instance)


class WindowField(StrictSerializer):
    """A half-open time window [start, end): end must be after start."""

    start = AwareDateTimeField()
    end = AwareDateTimeField()

    def validate(self, attrs):
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["Must be after start."]})
        return attrs
