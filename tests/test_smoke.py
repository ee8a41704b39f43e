from io import StringIO

from django.core.management import call_command

from tests.conftest import order_payload, post


def test_create_and_read_order(api, org):
    response = post(api, "/api/v1/orders", order_payload())
    assert response.status_code == 201, response.json()
    order = response.json()
    assert order["status"] == "CREATED"
    assert order["history"] == []
    listing = api.get("/api/v1/orders").json()
    assert [o["id"] for o in listing["results"]] == [order["id"]]


def test_the_models_and_their_migrations_agree(db):
    """A model change without its migration fails here, not on a deployment."""
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())
