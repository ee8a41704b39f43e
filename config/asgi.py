"""ASGI entry point: HTTP through Django, websockets through Channels, in one server.

Serve it with uvicorn (it streams request bodies, so core.asgi_limits can refuse an
oversized one before it is read): `uvicorn config.asgi:application`.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from core.asgi_limits import BodyLimitMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodyLimitMiddleware(
            django_asgi_app, limits=settings.REQUEST_BODY_LIMITS, default=settings.REQUEST_MAX_BODY_BYTES
        ),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
