"""Base views: every API view works inside the caller's organisation."""

from rest_framework import viewsets

from integrations.idempotency import IdempotentPostMixin


class OrganisationScopedMixin:
    """`self.organisation` is the caller's; querysets must be built from it (selectors)."""

    @property
    def organisation(self):
        return self.request.user.organisation


class OrganisationViewSet(IdempotentPostMixin, OrganisationScopedMixin, viewsets.GenericViewSet):
    lookup_value_converter = "uuid"
