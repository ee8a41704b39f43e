"""The admin saves organisations, clients, users and API keys through identity.services,
showing their errors on the field; `create_user` and `createsuperuser` obey the same rule."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from identity.models import ApiKey, Client, Organisation, Role, User
from identity.services import create_client, update_client, update_organisation


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors


ORGANISATION = {"name": "Initech", "slug": "initech", "kind": "3pl", "currency": "EUR", "timezone": "UTC"}


def test_adding_an_organisation_goes_through_the_service_and_names_the_user(staff_client, staff_user):
    response = staff_client.post(reverse("admin:identity_organisation_add"), ORGANISATION)
    assert response.status_code == 302, form_errors(response)
    organisation = Organisation.objects.get(slug="initech")
    assert organisation.history.get().history_user == staff_user


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"slug": "acme"}, "slug", "already exists"),
        ({"currency": "eur"}, "currency", "ISO 4217"),
        ({"timezone": "Mars/Olympus"}, "timezone", "IANA time zone"),
    ],
)
def test_an_invalid_organisation_is_refused_on_the_field(staff_client, org, changes, field, message):
    response = staff_client.post(reverse("admin:identity_organisation_add"), {**ORGANISATION, **changes})
    assert response.status_code == 200
    assert message in " ".join(form_errors(response)[field])
    assert not Organisation.objects.filter(name="Initech").exists()


def test_an_organisation_slug_is_fixed_once_created(staff_client, org):
    url = reverse("admin:identity_organisation_change", args=[org.pk])
    response = staff_client.post(url, {**ORGANISATION, "name": "Acme Oy", "slug": "renamed"})
    assert response.status_code == 302, form_errors(response)
    org.refresh_from_db()
    assert (org.name, org.slug) == ("Acme Oy", "acme")
    with pytest.raises(ValidationError) as refused:
        update_organisation(organisation=org, slug="renamed")
    assert "slug" in refused.value.message_dict


def test_a_client_slug_taken_in_the_organisation_is_refused_on_the_slug_field(staff_client, org):
    create_client(organisation=org, slug="x-retail", name="X Retail")
    response = staff_client.post(
        reverse("admin:identity_client_add"),
        {"organisation": org.pk, "slug": "x-retail", "name": "Another X", "is_active": "on"},
    )
    assert response.status_code == 200
    assert "already exists" in " ".join(form_errors(response)["slug"])
    assert Client.objects.filter(organisation=org).count() == 1


def test_a_client_is_added_and_paused_through_the_service(staff_client, org, staff_user):
    added = staff_client.post(
        reverse("admin:identity_client_add"),
        {"organisation": org.pk, "slug": "y-retail", "name": "Y Retail", "is_active": "on"},
    )
    assert added.status_code == 302, form_errors(added)
    client = Client.objects.get(slug="y-retail")
    url = reverse("admin:identity_client_change", args=[client.pk])
    paused = staff_client.post(url, {"name": "Y Retail Oy", "slug": "ignored"})
    assert paused.status_code == 302, form_errors(paused)
    client.refresh_from_db()
    assert (client.name, client.slug, client.is_active) == ("Y Retail Oy", "y-retail", False)
    assert client.history.first().history_user == staff_user
    with pytest.raises(ValidationError) as refused:
        update_client(client=client, slug="z")
    assert "slug" in refused.value.message_dict


def user_form(**fields) -> dict:
    return {
        "username": "newbie",
        "password1": "a-long-pw-123456",
        "password2": "a-long-pw-123456",
        "usable_password": "true",
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"role": Role.DISPATCHER}, "organisation", "Choose the organisation"),
        ({"role": Role.PLATFORM_STAFF, "organisation": "ORG"}, "organisation", "no organisation"),
        ({"role": Role.CLIENT_USER, "organisation": "ORG"}, "client", "needs a client"),
        ({"role": Role.DRIVER, "organisation": "ORG", "client": "CLIENT"}, "client", "Only a client user"),
        (
            {"role": Role.CLIENT_USER, "organisation": "ORG", "client": "OTHER"},
            "client",
            "another organisation",
        ),
    ],
)
def test_a_user_whose_role_organisation_and_client_disagree_is_refused_on_the_field(
    staff_client, org, other_org, fields, field, message
):
    ids = {
        "ORG": org.pk,
        "CLIENT": create_client(organisation=org, slug="c", name="C").pk,
        "OTHER": create_client(organisation=other_org, slug="o", name="O").pk,
    }
    posted = {name: ids.get(value, value) for name, value in fields.items()}
    response = staff_client.post(reverse("admin:identity_user_add"), user_form(**posted))
    assert response.status_code == 200
    assert message in " ".join(form_errors(response)[field])
    assert not User.objects.filter(username="newbie").exists()


def test_a_client_user_is_added_and_moved_to_dispatch_through_the_admin(staff_client, org):
    client = create_client(organisation=org, slug="c", name="C")
    added = staff_client.post(
        reverse("admin:identity_user_add"),
        user_form(role=Role.CLIENT_USER, organisation=org.pk, client=client.pk),
    )
    assert added.status_code == 302, form_errors(added)
    user = User.objects.get(username="newbie")
    assert (user.role, user.client) == (Role.CLIENT_USER, client)
    change = reverse("admin:identity_user_change", args=[user.pk])
    kept_client = staff_client.post(
        change,
        {"username": "newbie", "role": Role.DISPATCHER, "organisation": org.pk, "client": client.pk},
    )
    assert kept_client.status_code == 200
    assert "Only a client user" in " ".join(form_errors(kept_client)["client"])
    moved = staff_client.post(
        change,
        {
            "username": "newbie",
            "role": Role.DISPATCHER,
            "organisation": org.pk,
            "date_joined_0": "2030-01-01",
            "date_joined_1": "12:00:00",
        },
    )
    assert moved.status_code == 302, form_errors(moved)
    user.refresh_from_db()
    assert (user.role, user.client) == (Role.DISPATCHER, None)


def test_create_user_and_create_superuser_obey_the_same_rule(db, org):
    with pytest.raises(ValidationError) as refused:
        User.objects.create_user(username="lost", password="pw-123456-x", role=Role.DISPATCHER)
    assert "organisation" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        User.objects.create_superuser(username="root", password="pw-123456-x", organisation=org)
    assert "no organisation" in " ".join(refused.value.message_dict["organisation"])
    assert not User.objects.filter(username__in=["lost", "root"]).exists()


def api_key_form(org, **fields) -> dict:
    return {
        "organisation": org.pk,
        "name": "oms",
        "scopes": '["orders:read"]',
        "rate_limit_per_minute": 600,
        **fields,
    }


def test_a_new_api_key_is_shown_once(staff_client, org):
    response = staff_client.post(reverse("admin:identity_apikey_add"), api_key_form(org), follow=True)
    assert response.status_code == 200
    key = ApiKey.objects.get(name="oms")
    shown = [str(m) for m in response.context["messages"] if f"frk_{key.prefix}_" in str(m)]
    assert len(shown) == 1
    page = staff_client.get(reverse("admin:identity_apikey_change", args=[key.pk])).content.decode()
    assert f"frk_{key.prefix}_" not in page
    assert key.secret_hash not in page


def test_scopes_beyond_a_client_key_are_refused_on_the_scopes_field(staff_client, org):
    client = create_client(organisation=org, slug="c", name="C")
    response = staff_client.post(
        reverse("admin:identity_apikey_add"),
        api_key_form(org, client=client.pk, scopes='["orders:read", "drivers:read"]'),
    )
    assert response.status_code == 200
    assert "cannot hold drivers:read" in " ".join(form_errors(response)["scopes"])
    assert not ApiKey.objects.exists()
