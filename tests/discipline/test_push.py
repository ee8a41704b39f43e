"""A decision about a driver reaches their app's socket once it commits, as the API shows it,
and nobody else's."""

import pytest
from channels.db import database_sync_to_async
from rest_framework.test import APIClient

from identity.services import issue_device_token
from tests.discipline.factories import warning_for
from tests.dispatch.test_driver_socket import courier, run, socket

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_driver_hears_a_decision_about_them_as_the_api_shows_it(org):
    user, driver = courier(org, 1)
    _other_user, other = courier(org, 2)
    token = issue_device_token(user=user, name="Phone").plaintext

    async def scenario():
        app = socket()
        assert (await app.connect(timeout=5))[0]
        await app.send_json_to({"type": "auth", "token": token})
        assert (await app.receive_json_from(timeout=5))["type"] == "ready"
        await database_sync_to_async(warning_for)(other)
        mine = await database_sync_to_async(warning_for)(driver)
        pushed = await app.receive_json_from(timeout=5)
        assert await app.receive_nothing(timeout=0.2)
        await app.disconnect()
        return mine, pushed

    mine, pushed = run(scenario)
    assert pushed["type"] == "decision"
    assert pushed["decision"]["id"] == str(mine.id)
    assert pushed["decision"]["explanation"].startswith(
        "This is a warning because you accepted 0 of your last 20"
    )
    client = APIClient()
    client.force_login(user)
    assert client.get(f"/api/v1/driver/decisions/{mine.id}").json() == pushed["decision"]
