from rest_framework import serializers

from core.api.fields import StrictSerializer
from identity.models import Client, DeviceToken


class ClientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Client
        fields = ["id", "slug", "name", "is_active", "created_at"]


class ClientInSerializer(StrictSerializer):
    slug = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=200)


class ClientUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    is_active = serializers.BooleanField(required=False)


class DeviceTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeviceToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]


class IssuedDeviceTokenSerializer(DeviceTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once: store it on the device.")

    class Meta(DeviceTokenSerializer.Meta):
        fields = [*DeviceTokenSerializer.Meta.fields, "token"]


class DeviceSignInSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(max_length=100, help_text="The device, as the driver will recognise it.")
