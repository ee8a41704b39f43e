"""Who may call what: API keys by scope, session users by role, always inside one organisation."""

from rest_framework.permissions import BasePermission

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class IsOrganisationMember(BasePermission):
    """An authenticated caller that belongs to an organisation (API key or org user).

    A view may declare `scope_read` and `scope_write`; the caller must hold that scope:
    API keys by their scopes, users by their role (see fleet.models.ROLE_SCOPES).
    """

    message = "You must authenticate as a member of an organisation."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and getattr(user, "organisation_id", None)):
            return False
        needed = getattr(view, "scope_read" if request.method in SAFE_METHODS else "scope_write", None)
        if needed is None:
            return True
        if needed not in user.scopes:
            self.message = f"This requires the '{needed}' scope."
            return False
        return True
