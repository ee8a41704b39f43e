"""Serializer building blocks shared by every API: strict bodies, aware times, lat/lon."""

import math
from datetime import UTC

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.fields import empty

from core.geo import coordinate_errors, make_point, point_as_dict


def json_type_error(field: serializers.Field, value) -> str | None:
    """The one rule for JSON types in request bodies: DRF would turn "4999" or 1.0 into 4999,
    "yes" or 1 into True and 5 into "5"; a client that sends the wrong type is told instead.

    Integers must be JSON integers (not true, 1.0 or "1"), booleans true or false, text fields
    (CharField and its kinds, UUIDs) strings. Decimals (numbers or "2.50") and choices keep
    DRF's own checks; null is left to allow_null. Lists are checked item by item.
    """
    if value is None:
        return None
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Must be true or false."
    if isinstance(field, serializers.IntegerField):
        whole = isinstance(value, int) and not isinstance(value, bool)
        return None if whole else "Must be a whole number (a JSON integer, not a string or 1.0)."
    if isinstance(field, serializers.CharField | serializers.UUIDField):
        return None if isinstance(value, str) else "Must be a string."
    return None


def json_type_errors(fields, data) -> dict:
    """json_type_error for each writable field present in `data`, as DRF shapes its errors."""
    errors: dict = {}
    for field in fields:
        value = data.get(field.field_name, empty)
        if value is empty:
            continue
        if isinstance(field, serializers.ListField) and isinstance(value, list):
            items = {
                index: [error]
                for index, item in enumerate(value)
                if (error := json_type_error(field.child, item))
            }
            if items:
                errors[field.field_name] = items
        elif error := json_type_error(field, value):
            errors[field.field_name] = [error]
    return errors


class StrictTypesMixin:
    """For any Serializer (ModelSerializers too) taking a request body: JSON types are checked
    by json_type_error before DRF's coercing fields see the values."""

    def to_internal_value(self, data):
        # A form-encoded body (QueryDict) is all strings by nature: the rule is about JSON.
        if isinstance(data, dict) and not isinstance(data, QueryDict):
            errors = json_type_errors(self._writable_fields, data)
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class StrictSerializer(StrictTypesMixin, serializers.Serializer):
    """Refuses fields it does not know, so a typo is an error rather than silently ignored,
    and values of the wrong JSON type (StrictTypesMixin)."""

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
