"""Every write of discipline: the organisation's rules (a new version on every change), the
rules' decisions about drivers (evaluated in the transaction that recorded what they count),
appeals, human reviews that lift or confirm a decision, and suspensions that run out.

Each decision is written to the driver's decision record through fleet's services (a
suspension through change_driver_status, so their work is handled as any suspension's; a
warning or a review through record_driver_decision), with its inputs and the explanation the
driver reads; the driver's app hears of it on commit, and every step is a domain event.
"""

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache, partial

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.actors import Actor, ActorType
from core.db import lock
from core.events import record_event
from core.exceptions import ConcurrentChange, InvalidTransition
from discipline import engine, selectors
from discipline.models import (
    DecisionAction,
    DecisionStatus,
    DisciplineDecision,
    DisciplineReview,
    RuleSet,
)
from dispatch import push
from fleet import services as fleet_services
from fleet.models import Driver, DriverStatus, DriverStatusChange
from identity.models import Organisation

RULES_ACTOR = Actor.system("discipline-rules")
SUSPENSION_END_ACTOR = Actor.system("discipline-suspension-end")
APPEAL_MAX_CHARS = 2000
REASON_MAX_CHARS = 2000
# Decisions that take more away come first: once a rule suspends a driver, no other is weighed.
SEVERITY = {"SUSPEND": 0, "HUMAN_REVIEW": 1, "WARN": 2}


def _event(decision: DisciplineDecision, event_type: str, actor: Actor, reason: str = "", **payload) -> None:
    record_event(
        organisation=decision.organisation_id,
        event_type=event_type,
        subject_type="driver",
        subject_id=decision.driver_id,
        actor=actor,
        reason=reason,
        payload={
            "decision_id": str(decision.id),
            "driver_id": str(decision.driver_id),
            "rule": decision.rule_name,
            "rule_version": decision.rule_set.version,
            "action": decision.action,
            "status": decision.status,
            "suspended_until": decision.suspended_until.isoformat() if decision.suspended_until else None,
            **payload,
        },
    )


def _tell_driver(decision: DisciplineDecision) -> None:
    """Once the transaction commits, the driver's app hears of the decision (as GET
    /api/v1/driver/decisions/{id} shows it)."""
    transaction.on_commit(partial(push.object_to_driver, decision.driver_id, "decision", decision.id))


# --- rules ----------------------------------------------------------------------------------


def default_rules(organisation_id) -> RuleSet:
    """Version 1 of an organisation's rules: the defaults (unsaved)."""
    return RuleSet(
        organisation_id=organisation_id,
        version=1,
        rules=engine.normalised(engine.DEFAULT_RULES),
        **Actor.system("discipline-defaults").as_fields(),
    )


def rules_in_force(organisation: Organisation | str) -> RuleSet:
    """The organisation's rules in force: the newest version, or the defaults (version 1,
    unsaved until a decision or a change needs them stored)."""
    organisation_id = getattr(organisation, "pk", organisation)
    row = RuleSet.objects.filter(organisation_id=organisation_id).order_by("-version").first()
    return row if row is not None else default_rules(organisation_id)


def current_rules(organisation: Organisation | str) -> RuleSet:
    """The rules in force, stored: version 1 (the defaults) is written on first use, so every
    decision names a stored version."""
    row = rules_in_force(organisation)
    if not row._state.adding:
        return row
    try:
        with transaction.atomic():
            row.save()
            return row
    except IntegrityError:  # written by a concurrent first use
        return rules_in_force(organisation)


def check_rules(rules) -> dict:
    """The rules with their defaults written out, or a ValidationError naming each mistake
    by its path in the API's body (`rules.late_streak.threshold`)."""
    try:
        return engine.normalised(rules)
    except engine.RulesError as exc:
        raise ValidationError(
            {f"rules.{path}" if path else "rules": message for path, message in exc.errors.items()}
        ) from exc


@transaction.atomic
def update_rules(*, organisation: Organisation, rules, actor: Actor) -> RuleSet:
    """A new version of the organisation's rules (nothing is written for a mistake, nor for
    rules that are the same as those in force); recorded as `discipline.rules_updated`."""
    document = check_rules(rules)
    current = current_rules(organisation)
    current = lock(RuleSet.objects).get(id=current.id)
    if document == current.rules:
        return current
    newest = RuleSet.objects.filter(organisation=organisation).order_by("-version").first()
    try:
        with transaction.atomic():
            row = RuleSet.objects.create(
                organisation=organisation, version=newest.version + 1, rules=document, **actor.as_fields()
            )
    except IntegrityError as exc:
        raise ConcurrentChange("The rules changed while this request ran; read them and retry.") from exc
    record_event(
        organisation=organisation,
        event_type="discipline.rules_updated",
        subject_type="organisation",
        subject_id=organisation.id,
        actor=actor,
        payload={"version": row.version, "previous_version": newest.version, "rules": row.rules},
    )
    return row


# --- decisions ------------------------------------------------------------------------------


def _fresh_start(driver: Driver) -> datetime | None:
    """When the driver last became ACTIVE (approved, or reinstated): what happened before is
    not held against them again."""
    return (
        DriverStatusChange.objects.filter(driver=driver, to_status=DriverStatus.ACTIVE)
        .exclude(from_status=DriverStatus.ACTIVE)
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)
        .first()
    )


def _counted_through(driver: Driver, rule_name: str) -> datetime | None:
    """The newest item the rule's last decision about the driver counted."""
    return (
        DisciplineDecision.objects.filter(driver=driver, rule_name=rule_name)
        .order_by("-counted_through")
        .values_list("counted_through", flat=True)
        .first()
    )


def _warned_recently(driver: Driver, rule: engine.Rule, now: datetime) -> bool:
    """A warning of the rule that still stands (not lifted) and is younger than its validity."""
    return (
        DisciplineDecision.objects.filter(
            driver=driver,
            rule_name=rule.name,
            action=DecisionAction.WARN,
            created_at__gte=now - timedelta(days=rule.warning_valid_days),
        )
        .exclude(status=DecisionStatus.LIFTED)
        .exists()
    )


def evaluate_driver(*, driver_id, metrics: Iterable[str]) -> list[DisciplineDecision]:
    """Weigh the rules on these metrics for one driver, in the caller's transaction (the one
    that recorded the outcome, offer answer or rating). The driver's row is locked first, so
    two recordings at once are weighed one after the other: each item counts towards one
    decision of a rule at most, and a streak never decides twice."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("evaluate_driver runs inside the transaction that recorded the change")
    driver = lock(Driver.objects).filter(id=driver_id).first()
    if driver is None or driver.status != DriverStatus.ACTIVE:
        return []
    wanted = set(metrics)
    rule_set = current_rules(driver.organisation_id)
    rules = [
        rule for rule in engine.parse_rules(rule_set.rules).values() if rule.enabled and rule.metric in wanted
    ]
    if not rules:
        return []
    now = timezone.now()
    fresh_start = cache(partial(_fresh_start, driver))
    made = []
    for rule in sorted(rules, key=lambda rule: (SEVERITY[rule.action], rule.name)):
        items = selectors.items_for(driver, rule)
        # Only the items after `since` count (a run of the newest). A rule that does not apply
        # to all the items applies to no such run (engine.evaluate): `since` is read only when it does.
        if engine.evaluate(rule, items) is None:
            continue
        since = max((t for t in (fresh_start(), _counted_through(driver, rule.name)) if t), default=None)
        finding = engine.evaluate(rule, [item for item in items if since is None or item.at > since])
        if finding is None:
            continue
        verdict = engine.verdict(
            finding, version=rule_set.version, warned_recently=_warned_recently(driver, rule, now)
        )
        decision = apply_verdict(driver=driver, rule_set=rule_set, verdict=verdict, now=now)
        if decision is not None:
            made.append(decision)
            if decision.action == DecisionAction.SUSPEND:
                break
    return made


def apply_verdict(
    *, driver: Driver, rule_set: RuleSet, verdict: engine.Verdict, now: datetime
) -> DisciplineDecision | None:
    """Apply and record one verdict about a locked, ACTIVE driver (inside evaluate_driver's
    transaction); None if the same trigger already decided (its savepoint undoes everything
    this one wrote, the suspension too)."""
    finding, rule = verdict.finding, verdict.finding.rule
    decision_id = uuid.uuid4()
    trigger_key = f"{finding.newest.kind}:{finding.newest.id}"[:80]
    inputs = {
        "decision_id": str(decision_id),
        "rule": rule.name,
        "rule_version": rule_set.version,
        "rule_definition": rule.as_dict(),
        "action": verdict.action,
        **finding.as_inputs(),
    }
    try:
        with transaction.atomic():
            if verdict.action == DecisionAction.SUSPEND:
                change = fleet_services.change_driver_status(
                    driver_id=driver.id,
                    organisation=driver.organisation,
                    action="suspend",
                    actor=RULES_ACTOR,
                    reason=verdict.explanation,
                    inputs=inputs,
                )
                hours = rule.suspension_hours
                suspended_until = now + timedelta(hours=hours) if hours else None
            else:
                change = fleet_services.record_driver_decision(
                    driver_id=driver.id,
                    organisation=driver.organisation,
                    actor=RULES_ACTOR,
                    reason=verdict.explanation,
                    inputs=inputs,
                )
                suspended_until = None
            decision = DisciplineDecision.objects.create(
                id=decision_id,
                organisation_id=driver.organisation_id,
                driver=driver,
                rule_set=rule_set,
                rule_name=rule.name,
                action=verdict.action,
                inputs=inputs,
                explanation=verdict.explanation,
                status=(
                    DecisionStatus.IN_REVIEW
                    if verdict.action == DecisionAction.HUMAN_REVIEW
                    else DecisionStatus.IN_FORCE
                ),
                status_change=change,
                trigger_key=trigger_key,
                counted_through=max(item.at for item in finding.counted),
                suspended_until=suspended_until,
            )
    except IntegrityError:
        # Only "this trigger already decided" (a concurrent evaluation won) is expected; any
        # other failure (in the suspension's reactions, say) must not vanish with the savepoint.
        decided = DisciplineDecision.objects.filter(
            driver=driver, rule_name=rule.name, trigger_key=trigger_key
        )
        if not decided.exists():
            raise
        return None
    if verdict.action == DecisionAction.HUMAN_REVIEW:
        DisciplineReview.objects.create(
            organisation_id=driver.organisation_id, decision=decision, kind=DisciplineReview.Kind.RULE
        )
    _event(decision, "discipline.decision_made", RULES_ACTOR, verdict.explanation)
    _tell_driver(decision)
    return decision


# --- appeals and reviews --------------------------------------------------------------------


@transaction.atomic
def appeal(*, decision_id, driver: Driver, text: str) -> DisciplineReview:
    """The driver contests one of their own decisions: a person reviews it. One open review
    per decision; a decision a person already decided is not appealed again."""
    decision = lock(DisciplineDecision.objects).get(id=decision_id, driver=driver)
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": "Tell us why the decision is wrong."})
    if len(text) > APPEAL_MAX_CHARS:
        raise ValidationError({"text": f"At most {APPEAL_MAX_CHARS} characters."})
    if decision.status == DecisionStatus.IN_REVIEW:
        raise InvalidTransition(
            "This decision is already being reviewed by a person.",
            current_status=decision.status,
            action="appeal",
        )
    if decision.status in (DecisionStatus.CONFIRMED, DecisionStatus.LIFTED):
        raise InvalidTransition(
            "A person has already reviewed this decision.", current_status=decision.status, action="appeal"
        )
    try:
        with transaction.atomic():
            review = DisciplineReview.objects.create(
                organisation_id=decision.organisation_id,
                decision=decision,
                kind=DisciplineReview.Kind.APPEAL,
                appeal_text=text,
            )
    except IntegrityError as exc:
        raise InvalidTransition(
            "This decision is already being reviewed by a person.",
            current_status=decision.status,
            action="appeal",
        ) from exc
    decision.status = DecisionStatus.IN_REVIEW
    decision.save(update_fields=["status"])
    actor = Actor.for_user(driver.user) if driver.user else Actor(type=ActorType.DRIVER, label=driver.name)
    _event(decision, "discipline.appealed", actor, text, review_id=str(review.id))
    return review


RESOLUTIONS = {"lift": DisciplineReview.Outcome.LIFTED, "confirm": DisciplineReview.Outcome.CONFIRMED}


def _suspension_holds(decision: DisciplineDecision, driver: Driver) -> bool:
    """The driver is suspended by this decision (and nothing since reinstated them)."""
    if decision.action != DecisionAction.SUSPEND or decision.ended_at is not None:
        return False
    if driver.status != DriverStatus.SUSPENDED:
        return False
    latest = (
        DriverStatusChange.objects.filter(driver=driver, to_status=DriverStatus.SUSPENDED)
        .order_by("-occurred_at", "-id")
        .values_list("id", flat=True)
        .first()
    )
    return latest == decision.status_change_id


def _what(decision: DisciplineDecision) -> str:
    when = decision.created_at.strftime("%Y-%m-%d %H:%M UTC")
    return f'the {decision.get_action_display().lower()} of {when} (rule "{decision.rule_name}")'


@transaction.atomic
def resolve_review(
    *, review_id, organisation: Organisation, outcome: str, reason: str, user
) -> DisciplineReview:
    """A dispatcher or admin lifts the decision (a driver it suspended is reinstated) or
    confirms it, with a reason the driver reads. Of two people deciding at once, the first
    wins; the other is told it is already resolved."""
    if outcome not in RESOLUTIONS:
        raise ValidationError({"outcome": f"One of {', '.join(RESOLUTIONS)}."})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A decision about a driver needs a reason they can read."})
    if len(reason) > REASON_MAX_CHARS:
        raise ValidationError({"reason": f"At most {REASON_MAX_CHARS} characters."})
    if user is None:
        raise ValidationError({"user": "A review is decided by a person."})
    # The driver first, then the review and its decision: the order every service locks in
    # (a delivery weighing the rules holds the driver, then locks decisions).
    driver_id = (
        DisciplineReview.objects.filter(id=review_id, organisation=organisation)
        .values_list("decision__driver_id", flat=True)
        .first()
    )
    if driver_id is None:
        raise DisciplineReview.DoesNotExist("No such review.")
    driver = lock(Driver.objects).get(id=driver_id)
    review = lock(DisciplineReview.objects).get(id=review_id, organisation=organisation)
    if review.status == DisciplineReview.Status.RESOLVED:
        raise InvalidTransition(
            f"This review is already resolved ({review.get_outcome_display().lower()}).",
            current_status=review.status,
            action=outcome,
        )
    decision = lock(DisciplineDecision.objects).get(id=review.decision_id)
    actor = Actor.for_user(user)
    now = timezone.now()
    inputs = {"decision_id": str(decision.id), "review_id": str(review.id), "outcome": RESOLUTIONS[outcome]}
    if outcome == "lift" and _suspension_holds(decision, driver):
        change = fleet_services.change_driver_status(
            driver_id=driver.id,
            organisation=organisation,
            action="reinstate",
            actor=actor,
            reason=f"Your suspension was lifted after a review: {reason}",
            inputs=inputs,
        )
        decision.ended_at = now
    else:
        verb = "lifted" if outcome == "lift" else "confirmed"
        change = fleet_services.record_driver_decision(
            driver_id=driver.id,
            organisation=organisation,
            actor=actor,
            reason=f"A person reviewed {_what(decision)} and {verb} it: {reason}",
            inputs=inputs,
        )
    review.status = DisciplineReview.Status.RESOLVED
    review.outcome, review.reason, review.resolved_by, review.resolved_at = (
        RESOLUTIONS[outcome],
        reason,
        user,
        now,
    )
    review.save()
    decision.status = DecisionStatus.LIFTED if outcome == "lift" else DecisionStatus.CONFIRMED
    decision.save(update_fields=["status", "ended_at"])
    _event(
        decision,
        "discipline.review_resolved",
        actor,
        reason,
        review_id=str(review.id),
        outcome=review.outcome,
        decision_record_id=change.id,
    )
    _tell_driver(decision)
    return review


def reconsider_after_excuse(*, outcome) -> list[DisciplineReview]:
    """A dispatcher excused a late delivery after a decision counted it (in the excuse's
    transaction): the decision's basis changed, so each such decision a person has not lifted
    goes to the review queue with a note saying which delivery and why (unless one is open)."""
    opened = []
    decisions = (
        lock(DisciplineDecision.objects).filter(driver_id=outcome.driver_id).order_by("created_at", "id")
    )
    for decision in decisions.exclude(status__in=[DecisionStatus.LIFTED, DecisionStatus.IN_REVIEW]):
        counted = {item["id"] for item in decision.inputs.get("counted", []) if item.get("kind") == "outcome"}
        if str(outcome.id) not in counted:
            continue
        excuse = outcome.excuse_inputs.get("reason", "")
        note = (
            f"A dispatcher excused the lateness of order {outcome.order.external_ref} after this decision "
            f"counted it ({excuse}). Without it the rule may not have applied."
        )
        review = DisciplineReview.objects.create(
            organisation_id=decision.organisation_id,
            decision=decision,
            kind=DisciplineReview.Kind.EXCUSE,
            note=note,
        )
        decision.status = DecisionStatus.IN_REVIEW
        decision.save(update_fields=["status"])
        _event(decision, "discipline.review_opened", RULES_ACTOR, note, review_id=str(review.id))
        _tell_driver(decision)
        opened.append(review)
    return opened


# --- suspensions that run out ---------------------------------------------------------------


def end_due_suspensions(*, now: datetime | None = None) -> int:
    """Reinstate drivers whose suspension ran its length, each in its own transaction, with the
    reason; returns how many ended. Safe to run twice at once (the decision row is locked and
    read again)."""
    now = now or timezone.now()
    due = DisciplineDecision.objects.filter(
        action=DecisionAction.SUSPEND, ended_at=None, suspended_until__lte=now
    ).values_list("id", "driver_id")
    ended = 0
    for decision_id, driver_id in list(due):
        with transaction.atomic():
            driver = lock(Driver.objects).get(id=driver_id)  # the driver first, as every service locks
            decision = lock(DisciplineDecision.objects).get(id=decision_id)
            if decision.ended_at is not None:
                continue
            if _suspension_holds(decision, driver):
                hours = decision.inputs.get("rule_definition", {}).get("suspension_hours")
                fleet_services.change_driver_status(
                    driver_id=driver.id,
                    organisation=driver.organisation,
                    action="reinstate",
                    actor=SUSPENSION_END_ACTOR,
                    reason=(
                        f'Your {hours}-hour suspension under rule "{decision.rule_name}" ended; '
                        "you can go online again."
                    ),
                    inputs={
                        "decision_id": str(decision.id),
                        "suspended_until": decision.suspended_until.isoformat(),
                    },
                )
                _tell_driver(decision)
            decision.ended_at = now
            if decision.status == DecisionStatus.IN_FORCE:
                decision.status = DecisionStatus.ENDED
            decision.save(update_fields=["ended_at", "status"])
            _event(
                decision,
                "discipline.suspension_ended",
                SUSPENSION_END_ACTOR,
                "The suspension ran its length.",
            )
            ended += 1
    return ended
