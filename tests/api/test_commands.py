"""create_api_key: prints a new key once; only its hash is stored; the key works."""

import hashlib
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from identity.models import ALL_SCOPES, ApiKey
from tests.api.conftest import error_of
from tests.conftest import order_payload, post

KEY_SHAPE = re.compile(r"frk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


def create_key(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_a_new_key_once_and_stores_only_its_hash(org):
    out, err = create_key("--org", "acme", "--name", "erp")
    key = out.strip()
    match = KEY_SHAPE.fullmatch(key)
    assert match, out
    assert (out + err).count(key) == 1
    prefix, secret = match.groups()
    assert secret not in err
    stored = ApiKey.objects.get(organisation=org)
    assert stored.name == "erp" and stored.prefix == prefix
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    for value in (stored.secret_hash, stored.prefix, stored.name, str(stored.scopes)):
        assert secret not in value and key not in value
    assert sorted(stored.scopes) == sorted(ALL_SCOPES)
    assert "erp" in err and "acme" in err

    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/orders").status_code == 200
    assert post(api, "/api/v1/orders", order_payload(ref="CMD-1")).status_code == 201


def test_every_run_makes_a_new_key(org):
    first, _ = create_key("--org", "acme")
    second, _ = create_key("--org", "acme")
    assert first != second
    assert ApiKey.objects.filter(organisation=org).count() == 2


def test_scopes_and_rate_can_be_set(org):
    from rest_framework.test import APIClient

    out, _ = create_key("--org", "acme", "--scopes", "orders:read, drivers:read", "--rate", "5")
    stored = ApiKey.objects.get(organisation=org)
    assert stored.scopes == ["drivers:read", "orders:read"]
    assert stored.rate_limit_per_minute == 5
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {out.strip()}")
    assert api.get("/api/v1/orders").status_code == 200
    refused = post(api, "/api/v1/orders", order_payload(ref="CMD-2"))
    assert refused.status_code == 403
    assert "orders:write" in error_of(refused)["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "nope"], "'nope'"),
        (["--org", "acme", "--scopes", "orders:read,orders:delete"], "orders:delete"),
        (["--org", "acme", "--scopes", ","], "--scopes"),
        (["--org", "acme", "--rate", "0"], "--rate"),
        (["--org", "acme", "--name", ""], "name"),
        (["--org", "acme", "--name", "x" * 101], "name"),
    ],
)
def test_bad_arguments_are_refused_and_create_nothing(org, args, message):
    with pytest.raises(CommandError) as raised:
        create_key(*args)
    assert message in str(raised.value)
    assert not ApiKey.objects.exists()


def test_the_organisation_is_required(db):
    with pytest.raises(CommandError, match="--org"):
        create_key()
