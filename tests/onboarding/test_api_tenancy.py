"""Tenancy and roles on every onboarding route: an applicant reaches only their own
application, staff only their organisation's applicants, a client-limited key and a driver
nothing of the staff routes, and nobody changes another organisation's rows.

tests/api/test_tenancy.py's route walk takes ONBOARDING_ROUTES from here."""

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from identity.models import Role
from identity.services import create_api_key, create_client, issue_device_token
from onboarding import services
from onboarding.models import Application, ApplicationStatus, Review
from tests.api.conftest import client_for, device_client, error_of, session_client
from tests.conftest import make_user, post
from tests.onboarding.flow import OBAMA

# url name -> (who calls it, methods)
ONBOARDING_ROUTES = {
    "onboarding-signup": ("anyone", ["POST"]),
    "onboarding-own-application": ("applicant", ["GET"]),
    "onboarding-details": ("applicant", ["POST"]),
    "onboarding-consents": ("applicant", ["POST"]),
    "onboarding-documents": ("applicant", ["POST"]),
    "onboarding-liveness": ("applicant", ["POST"]),
    "onboarding-submit": ("applicant", ["POST"]),
    "onboarding-appeal": ("applicant", ["POST"]),
    "onboarding-applications": ("staff", ["GET"]),
    "onboarding-application": ("staff", ["GET"]),
    "onboarding-reviews": ("staff", ["GET"]),
    "onboarding-review-resolve": ("staff", ["POST"]),
    "onboarding-checkr-webhook": ("provider", ["POST"]),
}
SECRET_SURNAME = "Victimsurname"


def applicant(organisation, username: str, surname: str):
    """A signed-up applicant with details, in review (so both the review and the appeal exist)."""
    token = services.policy_for(organisation).signup_token
    application = services.sign_up(
        signup_token=token,
        username=username,
        password="A-long-pass-phrase-42",
        name=f"{surname} Applicant",
        phone=f"+35840{sum(map(ord, username)) * 1009 % 10**7:07d}",
        email=f"{username}@example.com",
        vehicle_type="car",
        plate=f"T-{username[:6].upper()}",
    )
    services.set_details(
        application_id=application.id,
        driver=application.driver,
        details={**OBAMA.declared(), "surname": surname, "document_number": f"{username[:6].upper()}1"},
    )
    return application


def in_review(application: Application) -> Review:
    Application.objects.filter(id=application.id).update(
        status=ApplicationStatus.MANUAL_REVIEW, decision_codes=["MRZ_APPLICANT_MISMATCH"]
    )
    return Review.objects.create(
        organisation_id=application.organisation_id, application=application, kind=Review.Kind.AUTOMATIC
    )


def state(application: Application) -> dict:
    application.refresh_from_db()
    return {
        "status": application.status,
        "declared": application.declared,
        "consents": list(application.consents.values_list("kind", flat=True)),
        "documents": application.documents.count(),
        "reviews": list(application.reviews.values_list("status", "resolved_outcome")),
        "challenge": application.liveness_challenge,
    }


@pytest.fixture
def victim(org):
    application = applicant(org, "victim", SECRET_SURNAME)
    return application, in_review(application)


def url(name: str, object_id=None, token="no-such-link") -> str:  # noqa: S107
    if name == "onboarding-signup":
        return reverse(name, kwargs={"token": token})
    return reverse(name, kwargs={"pk": object_id} if object_id else {})


def test_the_table_names_every_onboarding_api_route():
    from tests.api.test_tenancy import resolver_routes

    names = {name for route, name in resolver_routes() if route.startswith("api/v1/onboarding/")}
    assert names == set(ONBOARDING_ROUTES)


@pytest.mark.parametrize("how", ["session", "device"])
def test_an_applicant_reaches_only_their_own_application(org, other_org, victim, how):
    application, _review = victim
    me = applicant(other_org, "caller", "Callersurname")
    same_org = applicant(org, "neighbour", "Neighboursurname")
    before = [state(application), state(same_org)]
    problems = []
    for caller in (me, same_org):
        user = caller.driver.user
        client = (
            session_client(user)
            if how == "session"
            else device_client(issue_device_token(user=user, name="p"))
        )
        for name, (who, methods) in ONBOARDING_ROUTES.items():
            if who != "applicant":
                continue
            for method in methods:
                body = {"text": "probe", "kind": "DATA_PROCESSING", "text_version": "0"}
                response = client.generic(
                    method, url(name), json.dumps(body), content_type="application/json"
                )
                if SECRET_SURNAME in response.content.decode():
                    problems.append(f"{method} {name} showed the victim")
                if response.status_code >= 500:
                    problems.append(f"{method} {name}: {response.status_code}")
        own = client.get(url("onboarding-own-application")).json()
        assert own["id"] == str(caller.id)
        # Staff routes are not for applicants, not even for their own organisation.
        for name in ("onboarding-applications", "onboarding-reviews"):
            assert client.get(url(name)).status_code in (401, 403), name  # a device token: 401
        assert client.get(url("onboarding-application", application.id)).status_code in (401, 403, 404)
    assert not problems, problems
    assert state(application) == before[0]


def test_staff_see_only_their_organisation(org, other_org, victim):
    application, review = victim
    mine = applicant(other_org, "mine", "Minesurname")
    my_review = in_review(mine)
    before = state(application)
    admin = make_user(other_org, Role.ORG_ADMIN, "b-admin")
    for client in (session_client(admin), client_for(create_api_key(organisation=other_org, name="b"))):
        listed = client.get(url("onboarding-applications"))
        assert [row["id"] for row in listed.json()["results"]] == [str(mine.id)]
        reviews = client.get(url("onboarding-reviews")).json()["results"]
        assert [row["id"] for row in reviews] == [str(my_review.id)]
        assert client.get(url("onboarding-application", mine.id)).status_code == 200
        for response in (
            client.get(url("onboarding-application", application.id)),
            post(
                client,
                url("onboarding-review-resolve", review.id),
                {"outcome": "APPROVED", "reason": "Taken over."},
            ),
        ):
            assert response.status_code == 404
            error_of(response)
            assert SECRET_SURNAME not in response.content.decode()
    assert state(application) == before


def test_client_limited_keys_dispatchers_drivers_and_anonymous_callers_are_refused(org, victim, dispatcher):
    application, review = victim
    before = state(application)
    retailer = create_client(organisation=org, slug="shop", name="Shop")
    keyed = client_for(create_api_key(organisation=org, name="shop", client=retailer))
    driver = session_client(application.driver.user)
    for who, client, code in (
        ("client key", keyed, 403),
        ("driver", driver, 403),
        ("anonymous", APIClient(), 401),
    ):
        for name in ("onboarding-applications", "onboarding-reviews"):
            assert client.get(url(name)).status_code == code, (who, name)
        assert client.get(url("onboarding-application", application.id)).status_code == code, who
        resolve = post(
            client, url("onboarding-review-resolve", review.id), {"outcome": "APPROVED", "reason": "x"}
        )
        assert resolve.status_code == code, who
        error_of(resolve)
    # A dispatcher reads the queue but does not decide (fleet:write).
    staff = session_client(dispatcher)
    assert staff.get(url("onboarding-reviews")).status_code == 200
    refused = staff.post(
        url("onboarding-review-resolve", review.id), {"outcome": "APPROVED", "reason": "x"}, format="json"
    )
    assert refused.status_code == 403
    # Applicant routes: nobody but a driver account.
    for client in (keyed, staff):
        assert client.get(url("onboarding-own-application")).status_code in (401, 403)
    assert APIClient().get(url("onboarding-own-application")).status_code == 401
    assert state(application) == before


def test_a_sign_up_link_makes_an_applicant_of_its_own_organisation_only(org, other_org):
    client = APIClient()
    body = {
        "username": "newcomer",
        "password": "A-long-pass-phrase-42",
        "name": "New Comer",
        "phone": "+358401239999",
        "email": "new@example.com",
        "vehicle_type": "bicycle",
    }
    wrong = client.post(url("onboarding-signup", token="not-a-link"), body, format="json")
    assert wrong.status_code == 400 and "signup_token" in error_of(wrong)["fields"]
    made = client.post(
        url("onboarding-signup", token=services.policy_for(other_org).signup_token), body, format="json"
    )
    assert made.status_code == 201
    application = Application.objects.get(id=made.json()["id"])
    assert application.organisation == other_org and application.driver.organisation == other_org
    assert application.driver.user.role == Role.DRIVER
    assert not Application.objects.filter(organisation=org).exists()


def test_the_webhook_takes_only_signed_events(victim, settings):
    settings.CHECKR_API_KEY = "whsec-test"
    application, _ = victim
    before = state(application)
    response = APIClient().post(url("onboarding-checkr-webhook"), {"id": "e1"}, format="json")
    assert response.status_code == 403
    assert "X-Checkr-Signature" in error_of(response)["message"]
    assert state(application) == before
