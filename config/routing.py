from django.urls import path

from dispatch.consumers import DriverConsumer, LiveMapConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveMapConsumer.as_asgi()),
    path("ws/driver/", DriverConsumer.as_asgi()),
]
