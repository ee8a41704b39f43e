"""Publishing tariffs: earnings rules and client price lists, versioned by effective date.

A new version takes effect at its `effective_from` and ends the version it replaces there;
versions are never edited, so an earning can always be explained by the rule it used.
"""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from core.db import lock
from identity.models import Client, Organisation
from payouts import pricing
from payouts.models import EarningRule, PriceList

AMOUNT_FIELDS = ("base_minor", "per_km_minor", "waiting_per_minute_minor", "guaranteed_hourly_minor")


def _check_whole(values: dict) -> None:
    errors = {
        name: "A whole number of minor units, 0 or more."
        for name, value in values.items()
        if type(value) is not int or value < 0
    }
    if errors:
        raise ValidationError(errors)


def check_earning_rule(rule: EarningRule) -> None:
    """Every rule of an earnings rule version, as field errors (the admin form runs it too)."""
    _check_whole({name: getattr(rule, name) for name in (*AMOUNT_FIELDS, "waiting_threshold_s")})
    try:
        pricing.parse_surge(rule.surge)
    except ValueError as exc:
        raise ValidationError({"surge": str(exc)}) from None
    if rule.zone_id and rule.zone.organisation_id != rule.organisation_id:
        raise ValidationError({"zone": "No such zone in the organisation."})
    if rule.effective_from is None or rule.effective_from.tzinfo is None:
        raise ValidationError({"effective_from": "A time with its UTC offset."})


def _replace(versions, effective_from: datetime) -> None:
    """End the version in effect at `effective_from`; refuse when a later one exists."""
    versions = lock(versions)
    if versions.filter(effective_from__gte=effective_from).exists():
        raise ValidationError(
            {"effective_from": "A version from this time or later exists; publish after it."}
        )
    versions.filter(effective_from__lt=effective_from).filter(
        Q(effective_to__isnull=True) | Q(effective_to__gt=effective_from)
    ).update(effective_to=effective_from)


@transaction.atomic
def publish_earning_rule(*, organisation: Organisation, effective_from: datetime, **fields) -> EarningRule:
    rule = EarningRule(
        organisation=organisation,
        effective_from=effective_from,
        currency=fields.pop("currency", None) or organisation.currency,
        **fields,
    )
    check_earning_rule(rule)
    _replace(
        EarningRule.objects.filter(
            organisation=organisation, zone=rule.zone, vehicle_type=rule.vehicle_type, currency=rule.currency
        ),
        effective_from,
    )
    rule.save()
    return rule


@transaction.atomic
def publish_price_list(
    *,
    organisation: Organisation,
    effective_from: datetime,
    client: Client | None = None,
    base_minor: int,
    per_km_minor: int,
    currency: str = "",
) -> PriceList:
    _check_whole({"base_minor": base_minor, "per_km_minor": per_km_minor})
    if client is not None and client.organisation_id != organisation.id:
        raise ValidationError({"client": "No such client in the organisation."})
    currency = currency or organisation.currency
    _replace(
        PriceList.objects.filter(organisation=organisation, client=client, currency=currency), effective_from
    )
    return PriceList.objects.create(
        organisation=organisation,
        client=client,
        currency=currency,
        effective_from=effective_from,
        base_minor=base_minor,
        per_km_minor=per_km_minor,
    )
