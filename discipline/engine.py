"""Discipline rules: parsing an organisation's rules and deciding from a driver's recent record.

Pure (no Django): plain data in, plain data out. `parse_rules(document)` checks a rules
document and returns the rules with their defaults filled in, or raises `RulesError` naming
the path of every mistake (`late_streak.threshold`). `evaluate(rule, items)` reads a driver's
newest items (outcomes, offer answers or ratings, newest first, only those not yet counted by an
earlier decision of the rule) and returns a `Finding` when the rule applies. `explain` words
the decision so the driver can read it.

A rules document, keyed by a name for each rule (so a JSON merge patch can change one):

    {
      "late_streak": {"metric": "consecutive_late", "threshold": 3, "action": "SUSPEND",
                      "warn_first": true, "suspension_hours": 24, "enabled": true},
      "low_acceptance": {"metric": "acceptance_rate", "threshold": 50, "over_last": 20,
                         "action": "WARN"},
      "low_rating": {"metric": "mean_rating", "threshold": 3.5, "over_last": 10,
                     "action": "HUMAN_REVIEW"}
    }

Lateness the driver did not cause (an excused cause on the outcome) is left out of every
metric: it neither counts nor breaks a streak, and the decision lists it as left out.
"""

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

# metric -> what it measures, in words a driver reads
METRICS = {
    "consecutive_late": "late deliveries in a row",
    "on_time_rate": "the share of deliveries on time",
    "acceptance_rate": "the share of offers accepted",
    "mean_rating": "the mean customer rating",
}
RATE_METRICS = ("on_time_rate", "acceptance_rate")
WINDOW_METRICS = ("on_time_rate", "acceptance_rate", "mean_rating")
OUTCOME_METRICS = ("consecutive_late", "on_time_rate")
ACTIONS = ("WARN", "SUSPEND", "HUMAN_REVIEW")
# Causes of lateness the driver did not cause (scorecards.DeliveryOutcome.excused_cause).
EXCUSED_CAUSES = {
    "FOOD_NOT_READY": "the order was not ready at pickup",
    "TRAFFIC_INCIDENT": "a traffic incident on the route",
    "ROUTE_RESEQUENCED": "dispatch re-sequenced the route",
    "LATE_PICKUP_WINDOW": "it was assigned or ready too late for anyone to be on time",
    "DISPATCHER_EXCUSED": "a dispatcher excused it",
}
RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_RULES = 20
MAX_STREAK = 100
MAX_WINDOW = 1000
MAX_SUSPENSION_HOURS = 24 * 30
MAX_WARNING_DAYS = 365
DEFAULT_SUSPENSION_HOURS = 24
DEFAULT_WARNING_VALID_DAYS = 30
FIELDS = (
    "metric",
    "threshold",
    "over_last",
    "action",
    "warn_first",
    "suspension_hours",
    "warning_valid_days",
    "enabled",
)

DEFAULT_RULES = {
    "late_streak": {
        "metric": "consecutive_late",
        "threshold": 3,
        "action": "SUSPEND",
        "warn_first": True,
        "suspension_hours": DEFAULT_SUSPENSION_HOURS,
    },
    "low_acceptance": {"metric": "acceptance_rate", "threshold": 50, "over_last": 20, "action": "WARN"},
    "low_rating": {"metric": "mean_rating", "threshold": 3.5, "over_last": 10, "action": "HUMAN_REVIEW"},
}


class RulesError(ValueError):
    """Every mistake in a rules document, by its path (`late_streak.threshold`)."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors.items()))


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    threshold: float
    action: str
    over_last: int | None = None
    warn_first: bool = False
    suspension_hours: int | None = DEFAULT_SUSPENSION_HOURS  # None: until a person lifts it
    warning_valid_days: int = DEFAULT_WARNING_VALID_DAYS
    enabled: bool = True

    def as_dict(self) -> dict:
        shown = {
            "metric": self.metric,
            "threshold": self.threshold,
            "action": self.action,
            "enabled": self.enabled,
        }
        if self.metric in WINDOW_METRICS:
            shown["over_last"] = self.over_last
        if self.action == "SUSPEND":
            shown["warn_first"] = self.warn_first
            shown["suspension_hours"] = self.suspension_hours
            if self.warn_first:
                shown["warning_valid_days"] = self.warning_valid_days
        return shown


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value, low: int, high: int) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return "Must be a whole number."
    if not low <= value <= high:
        return f"Must be between {low} and {high}, got {value}."
    return None


def _threshold_error(metric: str, value) -> str | None:
    if not _is_number(value):
        return "Must be a number."
    if metric == "consecutive_late":
        return _whole(value, 1, MAX_STREAK)
    if metric in RATE_METRICS:
        if not 0 < value <= 100:
            return f"A rate is a percentage: more than 0 and at most 100, got {value}."
        return None
    if not 1 < value <= 5:  # mean_rating
        return f"Ratings go from 1 to 5: the threshold must be more than 1 and at most 5, got {value}."
    return None


def _parse_rule(name: str, body, errors: dict[str, str]) -> Rule | None:
    if not RULE_NAME.match(name):
        errors[name] = "A rule's name is 1-40 lowercase letters, digits or _, starting with a letter."
        return None
    if not isinstance(body, dict):
        errors[name] = "Must be an object."
        return None
    for unknown in sorted(set(body) - set(FIELDS)):
        errors[f"{name}.{unknown}"] = f"Unknown field; a rule takes {', '.join(FIELDS)}."
    metric = body.get("metric")
    if metric not in METRICS:
        errors[f"{name}.metric"] = f"Unknown metric {metric!r}; one of {', '.join(METRICS)}."
        return None
    action = body.get("action")
    if action not in ACTIONS:
        errors[f"{name}.action"] = f"Unknown action {action!r}; one of {', '.join(ACTIONS)}."
    if "threshold" not in body:
        errors[f"{name}.threshold"] = "Required."
    elif problem := _threshold_error(metric, body["threshold"]):
        errors[f"{name}.threshold"] = problem
    over_last = body.get("over_last")
    if metric in WINDOW_METRICS:
        if over_last is None:
            errors[f"{name}.over_last"] = "Required: how many of the newest items the rule looks at."
        elif problem := _whole(over_last, 1, MAX_WINDOW):
            errors[f"{name}.over_last"] = problem
    elif over_last is not None:
        errors[f"{name}.over_last"] = (
            "A streak counts the newest deliveries in a row; over_last does not apply."
        )
    for flag in ("warn_first", "enabled"):
        if flag in body and not isinstance(body[flag], bool):
            errors[f"{name}.{flag}"] = "Must be true or false."
    warn_first = body.get("warn_first", False)
    suspension_hours = body.get("suspension_hours", DEFAULT_SUSPENSION_HOURS)
    warning_valid_days = body.get("warning_valid_days", DEFAULT_WARNING_VALID_DAYS)
    if action in ACTIONS and action != "SUSPEND":
        for only in ("warn_first", "suspension_hours", "warning_valid_days"):
            if only in body:
                errors[f"{name}.{only}"] = "Only a SUSPEND rule takes this."
    elif suspension_hours is not None and (problem := _whole(suspension_hours, 1, MAX_SUSPENSION_HOURS)):
        errors[f"{name}.suspension_hours"] = f"{problem} (null: until a person lifts it)"
    if action == "SUSPEND" and (problem := _whole(warning_valid_days, 1, MAX_WARNING_DAYS)):
        errors[f"{name}.warning_valid_days"] = problem
    if any(path == name or path.startswith(f"{name}.") for path in errors):
        return None
    return Rule(
        name=name,
        metric=metric,
        threshold=body["threshold"],
        action=action,
        over_last=over_last,
        warn_first=warn_first,
        suspension_hours=suspension_hours if action == "SUSPEND" else None,
        warning_valid_days=warning_valid_days,
        enabled=body.get("enabled", True),
    )


def parse_rules(document) -> dict[str, Rule]:
    """The rules of a document by name, or RulesError naming each mistake's path."""
    if not isinstance(document, dict):
        raise RulesError({"": "Must be an object: each rule under its name."})
    if len(document) > MAX_RULES:
        raise RulesError({"": f"At most {MAX_RULES} rules."})
    errors: dict[str, str] = {}
    rules = {name: _parse_rule(str(name), body, errors) for name, body in document.items()}
    if errors:
        raise RulesError(errors)
    return rules


def normalised(document) -> dict:
    """The document as stored: every rule with its defaults written out."""
    return {name: rule.as_dict() for name, rule in parse_rules(document).items()}


# --- what the rules read --------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """A delivery's outcome: ON_TIME, LATE or FAILED; `excused_cause` when the lateness was not
    the driver's."""

    id: str
    label: str  # the order's reference, as the driver knows it
    outcome: str
    at: datetime
    late_seconds: int = 0
    excused_cause: str = ""

    kind = "outcome"

    @property
    def excused(self) -> bool:
        return self.outcome == "LATE" and bool(self.excused_cause)

    def as_input(self) -> dict:
        return {
            "kind": self.kind,
            "id": self.id,
            "order": self.label,
            "outcome": self.outcome,
            "at": self.at.isoformat(),
            "late_seconds": self.late_seconds,
            "excused_cause": self.excused_cause,
        }


@dataclass(frozen=True)
class OfferAnswer:
    """How a driver answered an offer: ACCEPTED, DECLINED or EXPIRED (let lapse)."""

    id: str
    label: str
    answer: str
    at: datetime

    kind = "offer"

    def as_input(self) -> dict:
        return {
            "kind": self.kind,
            "id": self.id,
            "offer": self.label,
            "answer": self.answer,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class Rating:
    id: str
    label: str
    stars: int
    at: datetime

    kind = "rating"

    def as_input(self) -> dict:
        return {
            "kind": self.kind,
            "id": self.id,
            "order": self.label,
            "stars": self.stars,
            "at": self.at.isoformat(),
        }


Item = Outcome | OfferAnswer | Rating


@dataclass(frozen=True)
class Finding:
    """A rule applies: the value it measured and exactly what it counted and left out."""

    rule: Rule
    value: float
    counted: tuple = ()
    left_out: tuple = ()  # excused outcomes, skipped

    @property
    def newest(self) -> Item:
        return self.counted[0]

    def as_inputs(self) -> dict:
        return {
            "metric": self.rule.metric,
            "value": self.value,
            "threshold": self.rule.threshold,
            "over_last": self.rule.over_last,
            "counted": [item.as_input() for item in self.counted],
            "left_out": [
                {
                    **item.as_input(),
                    "why": f"Left out: {EXCUSED_CAUSES.get(item.excused_cause, item.excused_cause)}.",
                }
                for item in self.left_out
            ],
        }


def _window(items, size: int) -> tuple[list, list]:
    """The newest `size` items that count, and the excused ones met on the way."""
    counted, left_out = [], []
    for item in items:
        if len(counted) == size:
            break
        (left_out if getattr(item, "excused", False) else counted).append(item)
    return counted, left_out


def evaluate(rule: Rule, items: list[Item]) -> Finding | None:
    """The finding when the rule applies to these items (newest first), else None. A window
    rule with fewer items than it looks at decides nothing: too little history is no evidence.
    Only the newest items decide: where the rule applies to the newest k of the items, it
    applies to all of them with the same finding; so a rule that does not apply to all of them
    applies to none of their newest runs (evaluate_driver relies on it)."""
    if not rule.enabled:
        return None
    if rule.metric == "consecutive_late":
        streak, left_out = [], []
        for item in items:
            if item.excused:
                left_out.append(item)
            elif item.outcome == "LATE":
                streak.append(item)
                if len(streak) == rule.threshold:
                    return Finding(rule, len(streak), tuple(streak), tuple(left_out))
            else:
                return None
        return None
    if rule.metric == "on_time_rate":
        # As on the scorecard: a failed delivery is neither on time nor late.
        items = [item for item in items if item.outcome != "FAILED"]
    counted, left_out = _window(items, rule.over_last)
    if len(counted) < rule.over_last:
        return None
    if rule.metric == "mean_rating":
        value = round(sum(item.stars for item in counted) / len(counted), 2)
    elif rule.metric == "acceptance_rate":
        value = round(100 * sum(item.answer == "ACCEPTED" for item in counted) / len(counted), 1)
    else:  # on_time_rate
        value = round(100 * sum(item.outcome == "ON_TIME" for item in counted) / len(counted), 1)
    if value < rule.threshold:
        return Finding(rule, value, tuple(counted), tuple(left_out))
    return None


# --- in words -------------------------------------------------------------------------------


def _hours(hours: int | None) -> str:
    if hours is None:
        return "until a person lifts it"
    return f"for {hours} hour{'s' if hours != 1 else ''}"


def _number(value: float) -> str:
    return f"{value:g}"


def describe(rule: Rule) -> str:
    """What the rule does, in plain language (shown with the rules and in each decision)."""
    if rule.metric == "consecutive_late":
        when = f"after {rule.threshold} late deliveries in a row"
    elif rule.metric == "mean_rating":
        when = (
            f"when the mean of the last {rule.over_last} customer ratings is under {_number(rule.threshold)}"
        )
    else:
        what = "deliveries on time" if rule.metric == "on_time_rate" else "offers accepted"
        when = f"when under {_number(rule.threshold)}% of the last {rule.over_last} {what}"
    if rule.action == "SUSPEND":
        text = f"Suspends a driver {_hours(rule.suspension_hours)} {when}"
        if rule.warn_first:
            text += (
                f"; the first time it is a warning, and only if it happens again within "
                f"{rule.warning_valid_days} days of the warning is the driver suspended"
            )
    elif rule.action == "WARN":
        text = f"Warns a driver {when}"
    else:
        text = f"Asks a person to review a driver's record {when}"
    text += ". Each delivery, offer or rating counts towards one decision of the rule at most."
    if rule.metric in OUTCOME_METRICS:
        causes = ", ".join(EXCUSED_CAUSES.values())
        text += f" Lateness the driver did not cause is left out ({causes})."
    if rule.metric in WINDOW_METRICS:
        text += f" A driver with fewer than {rule.over_last} is not judged by it."
    return text if rule.enabled else f"Switched off. {text}"


def _minutes_late(item: Outcome) -> str:
    minutes = max(1, math.ceil(item.late_seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''} late"


def _what_happened(finding: Finding) -> str:
    rule, counted = finding.rule, finding.counted
    if rule.metric == "consecutive_late":
        orders = "; ".join(f"order {item.label} ({_minutes_late(item)})" for item in reversed(counted))
        return f"your last {len(counted)} deliveries were late, one after another: {orders}."
    if rule.metric == "on_time_rate":
        on_time = sum(item.outcome == "ON_TIME" for item in counted)
        return (
            f"{on_time} of your last {len(counted)} deliveries were on time ({_number(finding.value)}%), "
            f"under the {_number(rule.threshold)}% the rule asks for."
        )
    if rule.metric == "acceptance_rate":
        accepted = sum(item.answer == "ACCEPTED" for item in counted)
        return (
            f"you accepted {accepted} of your last {len(counted)} offers ({_number(finding.value)}%), "
            f"under the {_number(rule.threshold)}% the rule asks for."
        )
    return (
        f"the mean of your last {len(counted)} customer ratings is {_number(finding.value)}, "
        f"under the {_number(rule.threshold)} the rule asks for."
    )


def explain(finding: Finding, *, action: str, version: int) -> str:
    """The decision in words for the driver: what happened, what the rule is, what was left
    out and why, and that they can appeal."""
    rule = finding.rule
    happened = _what_happened(finding)
    if action == "SUSPEND":
        opening = f"You are suspended {_hours(rule.suspension_hours)} because {happened}"
    elif action == "WARN" and rule.action == "SUSPEND":
        opening = (
            f"This is a warning because {happened} If this happens again within "
            f"{rule.warning_valid_days} days, you will be suspended {_hours(rule.suspension_hours)}."
        )
    elif action == "WARN":
        opening = f"This is a warning because {happened}"
    else:
        opening = (
            f"Your record has been sent to a person for review because {happened} "
            "Nothing changes for you until they decide."
        )
    parts = [opening, f'Rule "{rule.name}" (version {version}): {describe(rule)}']
    if finding.left_out:
        excused = "; ".join(
            f"order {item.label} ({EXCUSED_CAUSES.get(item.excused_cause, item.excused_cause)})"
            for item in reversed(finding.left_out)
        )
        count = len(finding.left_out)
        parts.append(
            f"{count} late deliver{'y was' if count == 1 else 'ies were'} left out because the "
            f"lateness was not yours: {excused}."
        )
    if action == "HUMAN_REVIEW":
        parts.append("You will see the person's decision and their reason here.")
    else:
        parts.append("You can appeal this decision; a person will review it.")
    return " ".join(parts)


@dataclass(frozen=True)
class Verdict:
    """What a finding leads to: the action taken (a warn-first rule warns before it suspends)."""

    finding: Finding
    action: str
    explanation: str = field(default="")


def verdict(finding: Finding, *, version: int, warned_recently: bool) -> Verdict:
    """The action for a finding: a SUSPEND rule with warn_first warns unless the driver holds a
    warning of the rule that is still valid."""
    rule = finding.rule
    action = "WARN" if rule.action == "SUSPEND" and rule.warn_first and not warned_recently else rule.action
    return Verdict(finding, action, explain(finding, action=action, version=version))
