"""The discipline rules over the API: dispatchers read them, organisation admins change them
(PUT replaces, PATCH merges by RFC 7396); every change is a new version, audited; an unknown
metric or an impossible threshold is a 400 naming its path, and nothing is written."""

import pytest

from core.models import DomainEvent
from discipline.models import RuleSet
from discipline.services import current_rules
from identity.models import Role
from identity.services import create_api_key
from tests.api.conftest import client_for, error_of, session_client
from tests.conftest import make_user

URL = "/api/v1/discipline-rules"


@pytest.fixture
def admin_api(org):
    return session_client(make_user(org, Role.ORG_ADMIN, "org-admin"))


def test_the_defaults_are_shown_as_version_1_without_writing_anything(org, dispatcher):
    response = session_client(dispatcher).get(URL)
    assert response.status_code == 200
    shown = response.json()
    assert shown["version"] == 1
    assert set(shown["rules"]) == {"late_streak", "low_acceptance", "low_rating"}
    assert shown["rules"]["late_streak"]["threshold"] == 3
    assert "Lateness the driver did not cause is left out" in shown["descriptions"]["late_streak"]
    assert "food" not in shown["descriptions"]["low_acceptance"]
    assert not RuleSet.objects.filter(organisation=org).exists()


def test_an_admin_replaces_the_rules_and_each_change_is_a_new_audited_version(org, admin_api):
    body = {"rules": {"late_streak": {"metric": "consecutive_late", "threshold": 4, "action": "SUSPEND"}}}
    response = admin_api.put(URL, body, format="json")
    assert response.status_code == 200, response.content
    shown = response.json()
    assert shown["version"] == 2  # version 1 was the defaults in force until now
    assert shown["rules"] == {
        "late_streak": {
            "metric": "consecutive_late",
            "threshold": 4,
            "action": "SUSPEND",
            "enabled": True,
            "warn_first": False,
            "suspension_hours": 24,
        }
    }
    assert shown["updated_by"].endswith("org-admin")
    assert list(RuleSet.objects.filter(organisation=org).values_list("version", flat=True)) == [2, 1]
    event = DomainEvent.objects.get(organisation=org, event_type="discipline.rules_updated")
    assert event.payload["version"] == 2 and event.payload["previous_version"] == 1
    assert event.actor_user.username == "org-admin"
    # The same rules again make no new version.
    assert admin_api.put(URL, body, format="json").json()["version"] == 2


def test_patch_merges_into_the_rules_in_force(org, admin_api):
    response = admin_api.patch(
        URL,
        {"rules": {"late_streak": {"threshold": 5, "warn_first": False}, "low_rating": None}},
        format="json",
    )
    assert response.status_code == 200, response.content
    rules = response.json()["rules"]
    assert set(rules) == {"late_streak", "low_acceptance"}
    assert (rules["late_streak"]["threshold"], rules["late_streak"]["warn_first"]) == (5, False)
    assert "warning_valid_days" not in rules["late_streak"]
    assert current_rules(org).rules == rules


@pytest.mark.parametrize(
    ("method", "body", "path"),
    [
        ("patch", {"rules": {"late_streak": {"metric": "speed"}}}, "rules.late_streak.metric"),
        ("patch", {"rules": {"low_acceptance": {"threshold": 150}}}, "rules.low_acceptance.threshold"),
        ("patch", {"rules": {"low_acceptance": {"over_last": 0}}}, "rules.low_acceptance.over_last"),
        ("patch", {"rules": {"low_rating": {"threshold": 7}}}, "rules.low_rating.threshold"),
        ("patch", {"rules": {"low_rating": {"threshold": 0}}}, "rules.low_rating.threshold"),
        ("patch", {"rules": {"late_streak": {"threshold": "3"}}}, "rules.late_streak.threshold"),
        (
            "put",
            {"rules": {"x": {"metric": "acceptance_rate", "threshold": 50, "action": "WARN"}}},
            "rules.x.over_last",
        ),
        ("put", {"rules": {"x": "on"}}, "rules.x"),
        ("put", {}, "rules"),
        ("put", {"rules": {}, "extra": 1}, "extra"),
    ],
)
def test_an_impossible_rule_is_a_400_naming_its_path_and_nothing_is_written(
    org, admin_api, method, body, path
):
    before = DomainEvent.objects.filter(organisation=org).count()
    response = getattr(admin_api, method)(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert path in error_of(response)["fields"], error_of(response)
    assert not RuleSet.objects.filter(organisation=org).exists()
    assert DomainEvent.objects.filter(organisation=org).count() == before


def test_dispatchers_read_but_do_not_write_and_a_key_needs_the_scope(org, dispatcher):
    client = session_client(dispatcher)
    response = client.patch(URL, {"rules": {"late_streak": {"threshold": 9}}}, format="json")
    assert response.status_code == 403
    assert "discipline:write" in error_of(response)["message"]
    reader = client_for(create_api_key(organisation=org, name="r", scopes=["discipline:read"]))
    assert reader.get(URL).status_code == 200
    assert reader.put(URL, {"rules": {}}, format="json").status_code == 403
    writer = client_for(
        create_api_key(organisation=org, name="w", scopes=["discipline:read", "discipline:write"])
    )
    assert writer.put(URL, {"rules": {}}, format="json").json()["rules"] == {}
    assert not RuleSet.objects.get(organisation=org, version=2).actor_user
