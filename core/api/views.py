"""Base views: every API view works inside the caller's organisation."""

from rest_framework import viewsets

from core.api.idempotency import IdempotentPostMixin


class OrganisationScopedMixin:
    """`self.organisation` is the caller's; querysets must be built from it (selectors).

    `self.client_id` is the client the caller is limited to, or None for the whole organisation.
    """

    @property
    def organisation(self):
        return self.request.user.organisation

    @property
    def client_id(self):
        return getattr(self.request.user, "client_id", None)


class OrganisationViewSet(IdempotentPostMixin, OrganisationScopedMixin, viewsets.GenericViewSet):
    lookup_value_converter = "uuid"
