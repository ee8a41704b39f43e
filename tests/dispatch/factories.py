"""Build service inputs from the API-shaped payloads in tests/conftest.py."""

from dispatch.api.serializers import OrderCreateSerializer
from dispatch.services.orders import OrderInput


def order_input(payload: dict) -> OrderInput:
    serializer = OrderCreateSerializer(data=payload)
    serializer.is_valid(raise_exception=True)
    return serializer.to_order_input()
