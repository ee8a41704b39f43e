"""The dispatch settings over the API: dispatchers read them, organisation admins change them
(PUT replaces, PATCH merges), every change goes through update_dispatch_settings (checked by
the engine's parser, audited), and a rules error names its path in the body."""

import pytest

from core.models import DomainEvent
from dispatch.models import DispatchSettings
from identity.models import Role
from tests.api.conftest import error_of, session_client
from tests.conftest import make_user

URL = "/api/v1/dispatch-settings"


@pytest.fixture
def admin_api(org):
    return session_client(make_user(org, Role.ORG_ADMIN, "org-admin"))


def test_the_defaults_are_shown_before_anything_is_saved(org, dispatcher):
    response = session_client(dispatcher).get(URL)
    assert response.status_code == 200
    assert response.json() == {
        "rules": {},
        "mode": "optimal",
        "offer_ttl_seconds": 45,
        "reassign_at_risk": False,
        "updated_at": None,
    }
    assert not DispatchSettings.objects.filter(organisation=org).exists()  # a read writes nothing


def test_an_admin_replaces_the_settings_and_the_change_is_audited(org, admin_api):
    body = {
        "rules": {"k_nearest": 8, "zones": {"mode": "hard"}},
        "mode": "broadcast",
        "offer_ttl_seconds": 90,
    }
    response = admin_api.put(URL, body, format="json")
    assert response.status_code == 200, response.content
    shown = response.json()
    assert shown["rules"] == {"k_nearest": 8, "zones": {"mode": "hard"}, "mode": "broadcast"}
    assert (shown["mode"], shown["offer_ttl_seconds"]) == ("broadcast", 90)
    row = DispatchSettings.objects.get(organisation=org)
    assert (row.rules, row.offer_ttl_seconds) == (shown["rules"], 90)
    event = DomainEvent.objects.get(organisation=org, event_type="dispatch.settings_updated")
    assert event.actor_label == "org-admin" or event.actor_user is not None
    assert event.payload == {"rules": shown["rules"], "offer_ttl_seconds": 90, "reassign_at_risk": False}
    assert row.history.first().history_user.username == "org-admin"


def test_put_needs_the_whole_document(admin_api):
    response = admin_api.put(URL, {"offer_ttl_seconds": 60}, format="json")
    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {"rules"}


def test_patch_merges_into_the_stored_rules(org, admin_api):
    admin_api.put(
        URL,
        {"rules": {"k_nearest": 8, "zones": {"mode": "hard", "bonus_s": 60}}, "offer_ttl_seconds": 30},
        format="json",
    )
    response = admin_api.patch(URL, {"rules": {"zones": {"bonus_s": 90}, "k_nearest": None}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["rules"] == {"zones": {"mode": "hard", "bonus_s": 90}}
    assert response.json()["offer_ttl_seconds"] == 30  # untouched
    response = admin_api.patch(URL, {"mode": "broadcast"}, format="json")
    assert response.json()["rules"] == {"zones": {"mode": "hard", "bonus_s": 90}, "mode": "broadcast"}
    assert DispatchSettings.objects.get(organisation=org).rules["mode"] == "broadcast"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"rules": {"zones": {"mode": "sometimes"}}}, "rules.zones.mode", "expected one of"),
        (
            {"rules": {"excluded_drivers": [{"client": "acme"}]}},
            "rules.excluded_drivers[0].driver",
            "required",
        ),
        ({"rules": {"speed": 3}}, "rules.speed", "unknown key"),
        (
            {"rules": {"broadcast": {"max_drivers_per_order": 0}}},
            "rules.broadcast.max_drivers_per_order",
            "at least 1",
        ),
        ({"offer_ttl_seconds": 1}, "offer_ttl_seconds", "Between"),
        ({"offer_ttl_seconds": "60"}, "offer_ttl_seconds", "whole number"),
        ({"mode": "everyone"}, "mode", "not a valid choice"),
        ({"rules": [1, 2]}, "rules", "dictionary"),
        ({"colour": "red"}, "colour", "Unknown field"),
    ],
)
def test_a_bad_value_is_a_400_naming_its_path_and_nothing_changes(org, admin_api, body, field, words):
    admin_api.put(URL, {"rules": {"k_nearest": 8}, "offer_ttl_seconds": 30}, format="json")
    events = DomainEvent.objects.filter(event_type="dispatch.settings_updated").count()
    response = admin_api.patch(URL, body, format="json")
    assert response.status_code == 400, response.content
    fields = error_of(response)["fields"]
    assert list(fields) == [field]
    assert words in " ".join(fields[field])
    row = DispatchSettings.objects.get(organisation=org)
    assert (row.rules, row.offer_ttl_seconds) == ({"k_nearest": 8}, 30)
    assert DomainEvent.objects.filter(event_type="dispatch.settings_updated").count() == events


def test_a_dispatcher_reads_but_may_not_write(org, dispatcher):
    client = session_client(dispatcher)
    assert client.get(URL).status_code == 200
    for method in ("put", "patch"):
        response = getattr(client, method)(URL, {"rules": {}, "offer_ttl_seconds": 60}, format="json")
        assert response.status_code == 403
        assert "dispatch:write" in error_of(response)["message"]
    assert not DispatchSettings.objects.filter(organisation=org).exists()


def test_the_schema_documents_the_route(admin_api):
    schema = admin_api.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/dispatch-settings" in schema
    assert "DispatchSettingsIn" in schema
