"""Reads for identity, scoped to the caller's organisation."""

from django.db.models import QuerySet

from identity.models import Client


def clients_visible_to(user) -> QuerySet[Client]:
    return Client.objects.filter(organisation_id=user.organisation_id)
