from django.urls import path

from dispatch.consumers import LiveMapConsumer

websocket_urlpatterns = [path("ws/live/", LiveMapConsumer.as_asgi())]
