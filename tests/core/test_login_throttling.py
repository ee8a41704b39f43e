"""Login throttling (django-axes) on the site and admin logins: wrong passwords lock out the
username and the address, for longer each time, and it is logged."""

import logging
import time
from datetime import timedelta

import pytest
from axes.models import AccessFailureLog
from django.test import Client, RequestFactory

from core.auth import MAX_LOCKOUT, client_ip, lockout_cooloff
from identity.models import Role, User
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
PASSWORD = "pw-123456-x"
LOGINS = {"site": "/accounts/login/", "admin": "/admin/login/"}


def try_login(client: Client, url: str, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def staff(db):
    return User.objects.create_user(
        username="ops", password=PASSWORD, role=Role.PLATFORM_STAFF, is_staff=True, is_superuser=True
    )


@pytest.mark.parametrize("where", LOGINS)
def test_forty_wrong_passwords_then_the_right_one_stays_locked_out(where, org, staff, caplog):
    username = "ops" if where == "admin" else make_user(org, Role.DISPATCHER, "disp").username
    client = Client()
    with caplog.at_level(logging.INFO):
        for _ in range(40):
            try_login(client, LOGINS[where], username, "wrong-password")
        response = try_login(client, LOGINS[where], username, PASSWORD)
    assert response.status_code == 429
    assert b"Signing in is paused" in response.content
    assert not signed_in(client)
    assert any("locking out" in record.getMessage().lower() for record in caplog.records)


def test_the_lockout_holds_per_username_and_per_address(org):
    victim = make_user(org, Role.DISPATCHER, "victim")
    make_user(org, Role.DISPATCHER, "bystander")
    attacker = Client()
    for _ in range(5):
        try_login(attacker, LOGINS["site"], victim.username, "wrong", address="198.51.100.1")
    # The username is locked from any address...
    elsewhere = Client()
    try_login(elsewhere, LOGINS["site"], victim.username, PASSWORD, address="192.0.2.50")
    assert not signed_in(elsewhere)
    # ...the attacker's address for any username; someone else, elsewhere, signs in.
    again = Client()
    try_login(again, LOGINS["site"], "bystander", PASSWORD, address="198.51.100.1")
    assert not signed_in(again)
    fine = Client()
    try_login(fine, LOGINS["site"], "bystander", PASSWORD, address="192.0.2.51")
    assert signed_in(fine)


def test_after_the_cool_off_the_right_password_works(org, settings):
    settings.LOGIN_LOCKOUT_BASE = timedelta(seconds=1)
    user = make_user(org, Role.DISPATCHER, "patient")
    client = Client()
    for _ in range(5):
        try_login(client, LOGINS["site"], user.username, "wrong")
    try_login(client, LOGINS["site"], user.username, PASSWORD)
    assert not signed_in(client)
    time.sleep(1.2)
    try_login(client, LOGINS["site"], user.username, PASSWORD)
    assert signed_in(client)


def test_each_further_lockout_in_a_day_lasts_twice_as_long(settings):
    settings.LOGIN_LOCKOUT_BASE = timedelta(minutes=1)
    request = RequestFactory().post("/accounts/login/", {"username": "someone"}, REMOTE_ADDR="203.0.113.9")

    def fail(times: int) -> None:
        for _ in range(times):
            AccessFailureLog.objects.create(username="someone", ip_address="203.0.113.9", user_agent="t")

    fail(5)
    assert lockout_cooloff(request) == timedelta(minutes=1)
    fail(5)
    assert lockout_cooloff(request) == timedelta(minutes=2)
    fail(10)
    assert lockout_cooloff(request) == timedelta(minutes=8)
    fail(200)
    assert lockout_cooloff(request) == MAX_LOCKOUT


@pytest.mark.parametrize("where", LOGINS)
def test_x_forwarded_for_neither_dodges_nor_aims_the_address_lockout(where, org, staff):
    """With no proxy configured the connection's address is counted, whatever the header says."""
    make_user(org, Role.DISPATCHER, "honest")
    for attempt in range(8):
        Client().post(
            LOGINS[where],
            {"username": f"guess{attempt}", "password": "wrong"},
            REMOTE_ADDR="198.51.100.9",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt + 1}",
        )
    assert set(AccessFailureLog.objects.values_list("ip_address", flat=True)) == {"198.51.100.9"}
    locked = Client()
    try_login(locked, LOGINS["site"], "honest", PASSWORD, address="198.51.100.9")
    assert not signed_in(locked)
    # The addresses named in the header were not aimed at: they still sign in.
    aimed_at = Client()
    try_login(aimed_at, LOGINS["site"], "honest", PASSWORD, address="192.0.2.1")
    assert signed_in(aimed_at)


def test_behind_a_trusted_proxy_the_address_it_forwarded_is_counted(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().post(
        "/accounts/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.4"
    )
    assert client_ip(request) == "203.0.113.4"
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"
