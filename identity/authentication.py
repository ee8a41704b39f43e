"""API-key authentication: `Authorization: Bearer frk_<prefix>_<secret>`."""

import hashlib
import hmac

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from identity.models import ApiKey

KEY_PREFIX = "frk_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


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
        token = parts[1]
        if not token.startswith(KEY_PREFIX) or token.count("_") < 2:
            raise exceptions.AuthenticationFailed("Malformed API key.")
        prefix, _, secret = token[len(KEY_PREFIX) :].partition("_")
        api_key = ApiKey.objects.select_related("organisation", "client").filter(prefix=prefix).first()
        if api_key is None or not hmac.compare_digest(api_key.secret_hash, hash_secret(secret)):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if not api_key.is_active:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        now = timezone.now()
        if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
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
