"""Who may use the driver app's API: drivers only, each for themself."""

from rest_framework.permissions import BasePermission

from identity.models import Role


class IsDriverAccount(BasePermission):
    """A signed-in (session or device token), active user whose role is DRIVER."""

    message = "Only drivers use the driver API."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.is_active
            and getattr(user, "role", None) == Role.DRIVER
            and user.organisation_id
        )
