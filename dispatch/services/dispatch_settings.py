"""Writes for an organisation's dispatch settings: the round's rules and the offer time limit.

The rules are checked by the engine's own parser (one copy of each rule), so a document the
admin or an API accepts is one a round can run; an error names the path inside the rules.
"""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.actors import Actor
from core.db import lock
from core.events import record_event
from core.history import attribute_change
from dispatch.engine.rules import Rules, RulesError, parse_rules
from dispatch.models import OFFER_TTL_MAX_SECONDS, OFFER_TTL_MIN_SECONDS, DispatchSettings
from identity.models import Organisation

DEFAULT_OFFER_TTL_SECONDS = 45


def check_dispatch_settings(*, rules, offer_ttl_seconds) -> Rules:
    """The parsed rules, or a ValidationError naming the field (and, for rules, the path)."""
    if isinstance(offer_ttl_seconds, bool) or not isinstance(offer_ttl_seconds, int):
        raise ValidationError({"offer_ttl_seconds": "Enter a whole number of seconds."})
    if not OFFER_TTL_MIN_SECONDS <= offer_ttl_seconds <= OFFER_TTL_MAX_SECONDS:
        raise ValidationError(
            {
                "offer_ttl_seconds": f"Between {OFFER_TTL_MIN_SECONDS} and {OFFER_TTL_MAX_SECONDS} "
                f"seconds, got {offer_ttl_seconds}."
            }
        )
    try:
        return parse_rules(rules)
    except RulesError as exc:
        # The path inside the rules goes along (params), so the API can name `rules.<path>`.
        message = str(exc) if exc.path else f"(top level): {exc}"
        raise ValidationError(
            {"rules": ValidationError(message, code="invalid_rules", params={"path": exc.path})}
        ) from exc


def rules_for(settings_row: DispatchSettings | None) -> Rules:
    """The organisation's rules; the defaults when it has none (saved rules were checked)."""
    return parse_rules(settings_row.rules if settings_row is not None else None)


def ensure_dispatch_settings(organisation: Organisation) -> DispatchSettings:
    """The organisation's settings row, created with the defaults if missing (a round locks it)."""
    row = DispatchSettings.objects.filter(organisation=organisation).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return DispatchSettings.objects.create(organisation=organisation)
    except IntegrityError:  # created by a concurrent round
        return DispatchSettings.objects.get(organisation=organisation)


@transaction.atomic
def update_dispatch_settings(
    *,
    organisation: Organisation,
    rules=None,
    offer_ttl_seconds: int | None = None,
    reassign_at_risk: bool | None = None,
    actor: Actor,
) -> DispatchSettings:
    """Change the rules, the offer time limit and/or whether the SLA watch may reassign work at
    risk (None keeps the current value); recorded as `dispatch.settings_updated`."""
    ensure_dispatch_settings(organisation)
    row = lock(DispatchSettings.objects).get(organisation=organisation)
    new_rules = row.rules if rules is None else rules
    new_ttl = row.offer_ttl_seconds if offer_ttl_seconds is None else offer_ttl_seconds
    check_dispatch_settings(rules=new_rules, offer_ttl_seconds=new_ttl)
    row.rules, row.offer_ttl_seconds = new_rules, new_ttl
    if reassign_at_risk is not None:
        if not isinstance(reassign_at_risk, bool):
            raise ValidationError({"reassign_at_risk": "Must be true or false."})
        row.reassign_at_risk = reassign_at_risk
    attribute_change(row, actor, "dispatch settings updated")
    row.save()
    record_event(
        organisation=organisation,
        event_type="dispatch.settings_updated",
        subject_type="organisation",
        subject_id=organisation.id,
        actor=actor,
        payload={
            "rules": row.rules,
            "offer_ttl_seconds": row.offer_ttl_seconds,
            "reassign_at_risk": row.reassign_at_risk,
        },
    )
    return row
