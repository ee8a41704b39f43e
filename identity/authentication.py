"""API-key authentication (`Authorization: Bearer frk_<prefix>_<secret>`) and drivers' device
tokens (`Authorization: Device frd_<prefix>_<secret>`, or `Bearer frd_...`)."""

import hashlib
import hmac

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from identity.models import ApiKey, DeviceToken, Role

KEY_PREFIX = "frk_"
DEVICE_TOKEN_PREFIX = "frd_"  # noqa: S105 (a marker, not a secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str, kind_prefix: str) -> tuple[str, str] | None:
    """`<kind_prefix><prefix>_<secret>` -> (prefix, secret), or None when it is not that shape."""
    if not token.startswith(kind_prefix) or token.count("_") < 2:
        return None
    prefix, _, secret = token[len(kind_prefix) :].partition("_")
    return prefix, secret


def touch_last_used(model, row) -> None:
    """Note when a credential was last used, at most once a minute (no write per request)."""
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        model.objects.filter(pk=row.pk).update(last_used_at=now)


class ApiKeyPrincipal:
    """The `request.user` of an API-key request: the organisation acting through the key."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    is_driver = False
    role = "api_key"
    pk = None
    id = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.organisation = api_key.organisation
        self.organisation_id = api_key.organisation_id
        self.client_id = api_key.client_id
        self.scopes = frozenset(api_key.scopes)

    def get_username(self) -> str:
        return f"api-key:{self.api_key.name}"

    def __str__(self) -> str:
        return self.get_username()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0] != self.keyword:
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        parsed = split_token(parts[1], KEY_PREFIX)
        if parsed is None:
            raise exceptions.AuthenticationFailed("Malformed API key.")
        prefix, secret = parsed
        api_key = ApiKey.objects.select_related("organisation", "client").filter(prefix=prefix).first()
        if api_key is None or not hmac.compare_digest(api_key.secret_hash, hash_secret(secret)):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if not api_key.is_active:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        touch_last_used(ApiKey, api_key)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes API-key authentication in the OpenAPI document."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "frk_<prefix>_<secret>",
            "description": "An API key of your organisation: `Authorization: Bearer frk_...`.",
        }


def device_token_user(token: str):
    """The active driver a device token signs in, or the reason it does not (for 401)."""
    parsed = split_token(token, DEVICE_TOKEN_PREFIX)
    if parsed is None:
        return None, "Malformed device token."
    prefix, secret = parsed
    device = DeviceToken.objects.select_related("user").filter(prefix=prefix).first()
    if device is None or not hmac.compare_digest(device.secret_hash, hash_secret(secret)):
        return None, "Invalid device token."
    if not device.is_active:
        return None, "This device token has been revoked."
    if not device.user.is_active or device.user.role != Role.DRIVER:
        return None, "This device token's account may no longer use the driver app."
    touch_last_used(DeviceToken, device)
    return device, ""


class DeviceTokenAuthentication(authentication.BaseAuthentication):
    """A driver's device: `Authorization: Device frd_...` (or `Bearer frd_...`), on the driver
    app's API only (DRIVER_APP_AUTHENTICATION). The request acts as the driver's user;
    `request.auth` is the DeviceToken."""

    keyword = "Device"

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).decode("latin-1").split()
        if not parts or parts[0] not in (self.keyword, "Bearer"):
            return None
        if parts[0] == "Bearer" and not (len(parts) == 2 and parts[1].startswith(DEVICE_TOKEN_PREFIX)):
            return None  # not a device token (an API key is no way into the driver app)
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Use 'Authorization: Device <device token>'.")
        device, problem = device_token_user(parts[1])
        if device is None:
            raise exceptions.AuthenticationFailed(problem)
        return device.user, device

    def authenticate_header(self, request) -> str:
        return self.keyword


# The driver app's API: a device token, or a driver's browser session.
DRIVER_APP_AUTHENTICATION = [DeviceTokenAuthentication, authentication.SessionAuthentication]


class DeviceTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes device-token authentication in the OpenAPI document."""

    target_class = DeviceTokenAuthentication
    name = "DeviceToken"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A driver's device token: `Authorization: Device frd_...` "
            "(issued by `POST /api/v1/driver/devices`).",
        }
