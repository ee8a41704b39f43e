"""The recipient's rating link: in the order's details and its delivered webhook, signed, one
rating per order, expiring, size-capped, escaped, and counted on the driver's scorecard."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from core.models import DomainEvent
from dispatch.rating_links import rating_token
from scorecards import services
from scorecards.models import Rating, Scorecard
from tests.api.conftest import client_for
from tests.scorecards.conftest import DAY, PROMISED_BY, carry, new_order

DELIVERED_AT = PROMISED_BY - timedelta(minutes=10)
SOON_AFTER = DELIVERED_AT + timedelta(hours=1)


@pytest.fixture
def delivered(org, driver):
    return carry(new_order(org), org, driver, delivered_at=DELIVERED_AT)


def rating_path(order) -> str:
    event = DomainEvent.objects.get(event_type="order.delivered", subject_id=str(order.id))
    link = event.payload["rating_link"]
    assert link["expires_at"] == (DELIVERED_AT + timedelta(days=7)).isoformat()
    return urlsplit(link["url"]).path


def test_the_link_is_in_the_delivered_webhook_and_the_orders_details(org, delivered, api_key):
    path = rating_path(delivered)
    with time_machine.travel(SOON_AFTER, tick=False):
        detail = client_for(api_key).get(f"/api/v1/orders/{delivered.id}").json()
    assert urlsplit(detail["rating_link"]["url"]).path == path
    undelivered = new_order(org)
    assert client_for(api_key).get(f"/api/v1/orders/{undelivered.id}").json()["rating_link"] is None


def test_a_recipient_rates_once_without_logging_in(org, driver, delivered):
    path = rating_path(delivered)
    browser = APIClient(enforce_csrf_checks=False)
    with time_machine.travel(SOON_AFTER, tick=False):
        page = browser.get(path)
        assert page.status_code == 200
        assert "script" not in page.content.decode().split("</head>")[1].lower()
        assert "Content-Security-Policy" in page
        sent = browser.post(path, {"stars": "4", "comment": "<script>alert(1)</script> Friendly"})
        assert sent.status_code == 200, sent.content
        replay = browser.post(path, {"stars": "1", "comment": "Again"})
        assert replay.status_code == 409
        assert browser.get(path).status_code == 409
    rating = Rating.objects.get()
    assert (rating.stars, rating.order_id, rating.driver_id) == (4, delivered.id, driver.id)
    card = Scorecard.objects.get(driver=driver)
    assert card.sums["7d"]["rating_sum"] == 4 and card.sums["7d"]["rating_count"] == 1
    assert card.last_n["rating_mean"] == 4.0
    event = DomainEvent.objects.get(event_type="rating.received")
    assert event.payload["stars"] == 4 and "Friendly" not in str(event.payload)


def test_the_comment_is_escaped_where_it_is_shown(org, driver, delivered, dispatcher):
    services.submit_rating(order=delivered, stars=5, comment="<b>bold</b>")
    # Nothing shows comments raw: the rating page's error re-render escapes what was typed.
    other = carry(new_order(org), org, driver, delivered_at=DELIVERED_AT)
    with time_machine.travel(SOON_AFTER, tick=False):
        page = APIClient().post(rating_path(other), {"stars": "9", "comment": "<img src=x onerror=alert(1)>"})
    assert page.status_code == 400
    text = page.content.decode()
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stars": "0"}, "stars"),
        ({"stars": "6"}, "stars"),
        ({"stars": "four"}, "stars"),
        ({}, "stars"),
        ({"stars": "3", "comment": "x" * 501}, "comment"),
    ],
)
def test_a_bad_rating_is_refused_and_nothing_is_written(delivered, body, field):
    with time_machine.travel(SOON_AFTER, tick=False):
        page = APIClient().post(rating_path(delivered), body)
    assert page.status_code == 400
    assert f'name="{field}"' in page.content.decode()
    assert not Rating.objects.exists()


def test_a_tampered_expired_or_undelivered_link_is_refused(org, driver, delivered):
    path = rating_path(delivered)
    browser = APIClient()
    with time_machine.travel(SOON_AFTER, tick=False):
        assert browser.get(path[:-3] + "xx/").status_code == 404
        assert browser.get("/rate/not-a-token/").status_code == 404
        open_order = new_order(org)
        assert browser.get(f"/rate/{rating_token(open_order.id)}/").status_code == 404
    with time_machine.travel(DELIVERED_AT + timedelta(days=7, seconds=1), tick=False):
        assert browser.get(path).status_code == 410
        assert browser.post(path, {"stars": "5"}).status_code == 410
    assert not Rating.objects.exists()


def test_a_big_body_is_refused_before_it_is_read(delivered):
    with time_machine.travel(SOON_AFTER, tick=False):
        response = APIClient().post(rating_path(delivered), {"stars": "5", "comment": "x" * 20_000})
    assert response.status_code == 413


def test_the_table_allows_one_rating_per_order(delivered, driver):
    services.submit_rating(order=delivered, stars=3)
    with pytest.raises(services.RatingAlreadyGiven):
        services.submit_rating(order=delivered, stars=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(
            organisation=delivered.organisation, driver=driver, order=delivered, stars=2, rated_at=DAY
        )


def test_the_service_rates_only_a_delivered_order_within_the_links_time(org, driver, delivered):
    from django.core.exceptions import ValidationError

    undelivered = new_order(org)
    with pytest.raises(ValidationError, match="Only a delivered order"):
        services.submit_rating(order=undelivered, stars=4, now=SOON_AFTER)
    with pytest.raises(ValidationError, match="time to rate"):
        services.submit_rating(order=delivered, stars=4, now=DELIVERED_AT + timedelta(days=7, seconds=1))
    assert not Rating.objects.exists()
    services.submit_rating(order=delivered, stars=4, now=SOON_AFTER)
    assert Rating.objects.get().stars == 4


def test_the_driver_never_sees_the_link_to_rate_themself(org, driver, delivered):
    from identity.models import Role
    from tests.api.conftest import session_client
    from tests.conftest import make_user

    user = make_user(org, Role.DRIVER, "driver-one")
    driver.user = user
    driver.save(update_fields=["user"])
    with time_machine.travel(SOON_AFTER, tick=False):
        response = session_client(user).get(f"/api/v1/driver/orders/{delivered.id}")
    assert response.status_code == 200
    assert "rating_link" not in response.json() and "/rate/" not in response.content.decode()
