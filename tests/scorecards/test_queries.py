"""The dispatchers' views read a fixed number of queries, however many drivers there are."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dispatch.models import Offer
from scorecards import services
from tests.api.conftest import session_client
from tests.conftest import make_active_driver


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_list_and_the_page_do_not_grow_with_the_drivers(client, org, dispatcher):
    from django.utils import timezone

    api = session_client(dispatcher)
    client.force_login(dispatcher)

    def add_driver(n):
        driver = make_active_driver(org, name=f"Courier {n}", phone=f"+3584010009{n:02d}", plate=f"Q-{n}")
        offer = Offer.objects.create(
            organisation=org,
            driver=driver,
            currency="EUR",
            expires_at=timezone.now() + timezone.timedelta(days=1),
        )
        services.record_offer_answer(offer=offer, answer="ACCEPTED", answered_at=timezone.now())

    add_driver(1)
    counts = (_queries(api, reverse("scorecard-list")), _queries(client, reverse("scorecards-page")))
    for n in range(2, 6):
        add_driver(n)
    assert (_queries(api, reverse("scorecard-list")), _queries(client, reverse("scorecards-page"))) == counts
