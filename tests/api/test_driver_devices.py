"""Device tokens: a driver signs a phone in with their password, sees their devices, revokes
one; only active drivers get and keep them; an organisation admin may revoke them too."""

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from core.actors import Actor
from identity.models import DeviceToken, Role, User
from identity.services import issue_device_token, revoke_device_token
from tests.api.conftest import DRIVER_PASSWORD, device_client, error_of, session_client
from tests.conftest import make_active_driver, make_user

DEVICES = "/api/v1/driver/devices"


@pytest.fixture
def driver_user(org):
    user = make_user(org, Role.DRIVER, "courier")
    make_active_driver(org, user=user)
    return user


def sign_in(username, password=DRIVER_PASSWORD, name="Pixel 8", **extra):
    return APIClient().post(
        DEVICES, {"username": username, "password": password, "name": name}, format="json", **extra
    )


def test_a_driver_signs_a_device_in_and_uses_its_token(driver_user):
    response = sign_in("courier")
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    token = body["token"]
    assert token.startswith(f"frd_{body['prefix']}_")
    stored = DeviceToken.objects.get(id=body["id"])
    assert stored.user == driver_user and stored.name == "Pixel 8"
    assert token not in {stored.secret_hash, stored.prefix}
    for header in (f"Device {token}", f"Bearer {token}"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        me = client.get("/api/v1/driver/me")
        assert me.status_code == 200, header
        assert me.json()["name"] == "Driver One"
    listed = client.get(DEVICES).json()
    assert [d["id"] for d in listed] == [body["id"]]
    assert "token" not in listed[0] and listed[0]["last_used_at"]
    # A device token is the driver app's: it opens no other API.
    assert client.get("/api/v1/orders").status_code == 401


def test_wrong_passwords_are_refused_and_then_locked_out(driver_user, settings):
    wrong = sign_in("courier", password="not-it")
    assert wrong.status_code == 400
    assert error_of(wrong)["fields"] == {"password": ["Wrong username or password."]}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in("courier", password="not-it")
    locked = sign_in("courier")  # even the right password, while locked out
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    assert "Too many failed sign-ins" in error_of(locked)["message"]
    assert not DeviceToken.objects.exists()


def test_signing_in_is_rate_limited_per_address(driver_user):
    answers = [sign_in("nobody", password="x", REMOTE_ADDR="10.0.0.9").status_code for _ in range(12)]
    assert 429 in answers


@pytest.mark.parametrize("role", [Role.DISPATCHER, Role.ORG_ADMIN, Role.CLIENT_USER])
def test_only_drivers_get_a_device_token(org, role):
    from identity.services import create_client

    client = create_client(organisation=org, slug="shop", name="Shop") if role == Role.CLIENT_USER else None
    make_user(org, role, "someone", client=client)
    refused = sign_in("someone")
    assert refused.status_code == 400
    assert "username" in error_of(refused)["fields"]
    assert not DeviceToken.objects.exists()


def test_a_driver_account_without_a_driver_record_gets_none(org):
    make_user(org, Role.DRIVER, "unlinked")
    refused = sign_in("unlinked")
    assert refused.status_code == 400
    assert "not linked" in error_of(refused)["fields"]["username"][0]


def test_a_driver_revokes_their_own_device_and_only_their_own(org, driver_user):
    phone = issue_device_token(user=driver_user, name="Phone")
    tablet = issue_device_token(user=driver_user, name="Tablet")
    colleague = make_user(org, Role.DRIVER, "colleague")
    make_active_driver(org, name="Colleague", phone="+358401000555", plate="COL-1", user=colleague)
    theirs = issue_device_token(user=colleague, name="Their phone")
    client = device_client(phone)
    assert client.delete(f"{DEVICES}/{theirs.device_token.id}").status_code == 404
    assert client.delete(f"{DEVICES}/{tablet.device_token.id}").status_code == 204
    assert device_client(tablet).get("/api/v1/driver/me").status_code == 401
    revoked = device_client(tablet).get("/api/v1/driver/me")
    assert error_of(revoked)["message"] == "This device token has been revoked."
    assert revoked["WWW-Authenticate"] == "Device"
    assert device_client(phone).get("/api/v1/driver/me").status_code == 200
    assert device_client(theirs).get("/api/v1/driver/me").status_code == 200
    # Revoking is recorded with who did it.
    assert (
        DeviceToken.history.filter(id=tablet.device_token.id).latest("history_date").history_user
        == driver_user
    )


def test_a_token_stops_working_when_its_driver_may_no_longer_drive(org, driver_user):
    issued = issue_device_token(user=driver_user, name="Phone")
    client = device_client(issued)
    assert client.get("/api/v1/driver/me").status_code == 200
    User.objects.filter(pk=driver_user.pk).update(is_active=False)
    assert client.get("/api/v1/driver/me").status_code == 401
    User.objects.filter(pk=driver_user.pk).update(is_active=True, role=Role.DISPATCHER)
    assert client.get("/api/v1/driver/me").status_code == 401


@pytest.mark.parametrize(
    "header", ["Device", "Device frd_", "Device frk_abc_def", "Device frd_abc_def", "Bearer frd_x_y"]
)
def test_malformed_or_unknown_device_tokens_get_401(driver_user, header):
    response = APIClient().get("/api/v1/driver/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert error_of(response)["code"] == "authentication_failed"


def test_an_org_admin_revokes_a_drivers_device_but_not_another_organisations(
    org, other_org, driver_user, org_admin
):
    issued = issue_device_token(user=driver_user, name="Lost phone")
    other_admin = make_user(other_org, Role.ORG_ADMIN, "other-admin")
    dispatcher = make_user(org, Role.DISPATCHER, "disp")
    for outsider in (other_admin, dispatcher):
        with pytest.raises(ValidationError) as refused:
            revoke_device_token(device_token=issued.device_token, actor=Actor.for_user(outsider))
        assert "device_token" in refused.value.message_dict
    assert device_client(issued).get("/api/v1/driver/me").status_code == 200
    revoke_device_token(device_token=issued.device_token, actor=Actor.for_user(org_admin))
    assert device_client(issued).get("/api/v1/driver/me").status_code == 401


def test_staff_revoke_devices_with_the_admin_action(staff_client, driver_user):
    issued = issue_device_token(user=driver_user, name="Lost phone")
    response = staff_client.post(
        "/admin/identity/devicetoken/",
        {"action": "revoke", "_selected_action": [str(issued.device_token.id)]},
    )
    assert response.status_code == 302
    issued.device_token.refresh_from_db()
    assert issued.device_token.revoked_at is not None


def test_a_driver_session_also_lists_devices_but_a_dispatcher_does_not(driver_user, dispatcher):
    issue_device_token(user=driver_user, name="Phone")
    assert [d["name"] for d in session_client(driver_user).get(DEVICES).json()] == ["Phone"]
    assert session_client(dispatcher).get(DEVICES).status_code == 403
