from tests.conftest import order_payload, post


def test_create_and_read_order(api, org):
    response = post(api, "/api/v1/orders", order_payload())
    assert response.status_code == 201, response.json()
    order = response.json()
    assert order["status"] == "CREATED"
    assert order["history"] == []
    listing = api.get("/api/v1/orders").json()
    assert [o["id"] for o in listing["results"]] == [order["id"]]
