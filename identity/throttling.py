"""Rate limits per API key (its own rate), and per user for signed-in callers."""

from rest_framework.throttling import SimpleRateThrottle

from identity.models import ApiKey

SESSION_RATE = "1200/min"


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self) -> str:
        return SESSION_RATE

    def allow_request(self, request, view):
        if isinstance(request.auth, ApiKey):
            self.num_requests, self.duration = request.auth.rate_limit_per_minute, 60
        else:
            self.num_requests, self.duration = self.parse_rate(SESSION_RATE)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return f"throttle:{ident}"


class DeviceSignInThrottle(SimpleRateThrottle):
    """Signing a device in checks a password: a few tries a minute per address, on top of the
    lockouts django-axes keeps per username and address."""

    scope = "device_sign_in"
    rate = "10/min"

    def get_cache_key(self, request, view):
        return f"throttle:device-sign-in:{self.get_ident(request)}"
