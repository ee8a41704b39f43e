"""A database that is busy (no pooled connection free, a lock not granted in time) answers
503 with Retry-After, not a 500."""

from unittest import mock

import pytest
from django.db import OperationalError

from tests.api.conftest import error_of


@pytest.mark.parametrize(
    "cause",
    [
        "couldn't get a connection after 10.00 sec",
        "canceling statement due to lock timeout",
        "database is locked",
    ],
)
def test_a_busy_database_is_a_503_with_retry_after(api, cause):
    with mock.patch("dispatch.api.views.selectors.orders_visible_to", side_effect=OperationalError(cause)):
        response = api.get("/api/v1/orders")
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert error_of(response)["code"] == "busy"


def test_other_database_errors_are_not_dressed_up_as_busy(api):
    with (
        mock.patch(
            "dispatch.api.views.selectors.orders_visible_to", side_effect=OperationalError("disk full")
        ),
        pytest.raises(OperationalError),
    ):
        api.get("/api/v1/orders")
