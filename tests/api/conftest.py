"""Fixtures for the REST API tests: a populated organisation A and a snapshot of its rows."""

import io
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from core.actors import Actor
from core.models import DomainEvent, IdempotencyRecord
from discipline.models import DisciplineDecision, DisciplineReview, RuleSet
from dispatch.models import Offer, Order, OrderTransition, RepositionSuggestion, Stop, TrafficRecord
from dispatch.services.offers import accept_offer, make_offer
from dispatch.services.orders import create_order, deliver_order, transition_order
from dispatch.services.traffic import ingest_traffic
from fleet.models import Driver, Hub, Zone
from fleet.services import PingInput, record_ping, set_driver_online
from identity.models import ApiKey, Client, DeviceToken, Organisation, Role, User
from identity.services import (
    IssuedApiKey,
    IssuedDeviceToken,
    create_api_key,
    create_client,
    issue_device_token,
)
from integrations.models import WebhookDelivery, WebhookSubscription
from integrations.services import create_webhook_subscription
from payouts.models import CashOutQuote, Dispute, Earning, LedgerEntry, Payout
from payouts.services.payouts import quote_cash_out
from tests.conftest import make_active_driver, make_hub, make_user, make_zone, order_payload
from tests.discipline.factories import review_for, warning_for
from tests.dispatch.factories import order_input, suggest_to

LAST_POSITION = {"lat": 60.1712, "lon": 24.9402}


@pytest.fixture(autouse=True)
def fresh_cache():
    """Rate-limit counters live in the cache (Redis when REDIS_URL is set): start clean."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def in_process_jobs(settings):
    """No webhook is sent over the network from these tests, whatever REDIS_URL says."""
    settings.BACKGROUND_JOBS = "in-process"


def session_client(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def client_for(issued: IssuedApiKey) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    return client


def error_of(response) -> dict:
    """The JSON error body, checked for the one shape every API error has."""
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]) <= {"code", "message", "fields"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@dataclass
class OrgData:
    """Everything one organisation has that the API can show."""

    organisation: Organisation
    api_key: IssuedApiKey
    client: Client
    hub: Hub
    zone: Zone
    driver: Driver
    order: Order
    subscription: WebhookSubscription
    delivery: WebhookDelivery
    traffic: TrafficRecord
    review: DisciplineReview

    def ids(self) -> dict[str, str]:
        return {
            "order": str(self.order.id),
            "driver": str(self.driver.id),
            "hub": str(self.hub.id),
            "zone": str(self.zone.id),
            "webhook-subscription": str(self.subscription.id),
            "webhook-delivery": str(self.delivery.id),
            "client": str(self.client.id),
            "traffic-record": str(self.traffic.id),
            "invoice": str(self.client.id),  # an invoice is a client's, by the client's id
            "discipline-review": str(self.review.id),
        }

    def secrets(self) -> list[str]:
        """Strings that must never appear in an answer to another organisation."""
        return [
            *self.ids().values(),
            str(self.delivery.event_id),
            str(self.organisation.id),
            self.order.external_ref,
            self.hub.name,
            self.zone.name,
            self.driver.name,
            self.subscription.url,
            self.subscription.secret[:10],
            self.client.name,
            self.traffic.source,
            str(self.review.decision_id),
        ]


def populate(organisation: Organisation, tag: str, phone: str) -> OrgData:
    """A hub, a zone, a driver with a last position, a webhook subscription, and an order
    assigned to the driver (whose events gave the subscription its deliveries)."""
    api_key = create_api_key(organisation=organisation, name=f"{tag}-oms")
    client = create_client(organisation=organisation, slug=f"{tag.lower()}-retail", name=f"{tag} Retail Oy")
    hub = make_hub(organisation, name=f"{tag} Central hub")
    zone = make_zone(organisation, name=f"{tag} Kluuvi")
    driver = make_active_driver(organisation, name=f"{tag} Driver", phone=phone, plate=f"{tag}-123")
    record_ping(
        driver=driver,
        ping=PingInput(recorded_at=timezone.now() - timedelta(seconds=30), accuracy_m=5, **LAST_POSITION),
    )
    subscription = create_webhook_subscription(
        organisation=organisation, url=f"https://oms.{tag.lower()}.example/hooks", event_types=["order.*"]
    )
    order = create_order(
        organisation=organisation,
        actor=Actor.for_api_key(api_key.api_key),
        data=order_input(order_payload(ref=f"{tag}-ORD-1", client_id=str(client.id))),
    )
    transition_order(
        order_id=order.id,
        organisation=organisation,
        action="assign",
        actor=Actor.system("test-matching"),
        driver=driver,
    )
    order.refresh_from_db()
    delivery = WebhookDelivery.objects.filter(subscription=subscription).order_by("created_at").first()
    assert delivery is not None, "the order's events should have made webhook deliveries"
    start = timezone.now()
    ingest_traffic(
        organisation=organisation,
        source=f"{tag.lower()}-city-feed",
        records=[
            {
                "id": f"{tag}-roadworks",
                "type": "incident",
                "way_id": 4242,
                "factor": 0.3,
                "valid_from": start.isoformat(),
                "valid_until": (start + timedelta(hours=2)).isoformat(),
            }
        ],
        actor=Actor.system("test"),
    )
    traffic = TrafficRecord.objects.get(organisation=organisation)
    review = review_for(driver)  # a discipline rule asked a person to look at the driver's ratings
    return OrgData(
        organisation, api_key, client, hub, zone, driver, order, subscription, delivery, traffic, review
    )


@pytest.fixture
def org_a(org) -> OrgData:
    return populate(org, "A", "+358401000001")


@pytest.fixture
def org_b(other_org) -> OrgData:
    return populate(other_org, "B", "+358402000001")


@pytest.fixture
def org_b_admin(other_org) -> User:
    return make_user(other_org, Role.ORG_ADMIN, "b-admin")


def snapshot(organisation: Organisation) -> dict:
    """Every row of the organisation the API could change, with the fields it could change."""
    org = organisation
    return {
        "orders": list(
            Order.objects.filter(organisation=org)
            .order_by("id")
            .values_list("id", "status", "driver_id", "hub_id", "notes", "updated_at")
        ),
        "transitions": OrderTransition.objects.filter(order__organisation=org).count(),
        "events": DomainEvent.objects.filter(organisation=org).count(),
        "drivers": list(
            Driver.objects.filter(organisation=org)
            .order_by("id")
            .values_list("id", "status", "is_online", "last_seen_at", "hub_id")
        ),
        "hubs": list(
            Hub.objects.filter(organisation=org).order_by("id").values_list("id", "name", "is_active")
        ),
        "zones": list(Zone.objects.filter(organisation=org).order_by("id").values_list("id", "name")),
        "subscriptions": list(
            WebhookSubscription.objects.filter(organisation=org)
            .order_by("id")
            .values_list("id", "url", "event_types", "is_active", "description", "secret")
        ),
        "deliveries": list(
            WebhookDelivery.objects.filter(organisation=org)
            .order_by("id")
            .values_list("id", "status", "attempts", "next_attempt_at")
        ),
        "clients": list(
            Client.objects.filter(organisation=org).order_by("id").values_list("id", "name", "is_active")
        ),
        "api_keys": list(
            ApiKey.objects.filter(organisation=org).order_by("id").values_list("id", "revoked_at", "scopes")
        ),
        "idempotency_records": IdempotencyRecord.objects.filter(organisation=org).count(),
        "discipline": list(
            DisciplineReview.objects.filter(organisation=org)
            .order_by("id")
            .values_list("id", "status", "decision__status", "decision__driver__status")
        ),
        "discipline_rules": list(RuleSet.objects.filter(organisation=org).values_list("version", "rules")),
        "traffic": list(
            TrafficRecord.objects.filter(organisation=org)
            .order_by("id")
            .values_list("id", "factor", "valid_until")
        ),
    }


# --- the driver app -----------------------------------------------------------------------

DRIVER_PASSWORD = "pw-123456-x"  # make_user's


def device_client(issued: IssuedDeviceToken) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {issued.plaintext}")
    return client


def offer_to(driver: Driver, *orders: Order, minutes: int = 10, incentive_minor: int = 100) -> Offer:
    """Offer orders to a driver as the matching engine would."""
    return make_offer(
        organisation=driver.organisation,
        driver=driver,
        orders=list(orders),
        expires_at=timezone.now() + timedelta(minutes=minutes),
        incentive_minor=incentive_minor,
        actor=Actor.system("test-matching"),
    )


@dataclass
class DriverApp:
    """A driver with an account, a signed-in phone, an order they accepted, a pending offer, a
    pending reposition suggestion, and a delivered order whose earning (its tip) is on their
    balance, with a cash-out quote."""

    user: User
    driver: Driver
    device: IssuedDeviceToken
    order: Order
    offer: Offer
    suggestion: RepositionSuggestion
    earning: Earning
    quote: CashOutQuote
    decision: DisciplineDecision

    def ids(self) -> dict[str, str]:
        return {
            "driver-decision": str(self.decision.id),
            "driver-offer": str(self.offer.id),
            "driver-order": str(self.order.id),
            "driver-device": str(self.device.device_token.id),
            "driver-reposition": str(self.suggestion.id),
        }

    def secrets(self) -> list[str]:
        return [
            *self.ids().values(),
            str(self.driver.id),
            self.driver.name,
            self.order.external_ref,
            str(self.earning.id),
            str(self.quote.id),
            self.earning.order.external_ref,
        ]


def driver_app(organisation: Organisation, tag: str, phone: str) -> DriverApp:
    user = make_user(organisation, Role.DRIVER, f"driver-{tag.lower()}")
    driver = make_active_driver(
        organisation, name=f"{tag} Courier", phone=phone, plate=f"{tag}-987", user=user
    )
    set_driver_online(driver_id=driver.id, organisation=organisation, online=True, actor=Actor.for_user(user))
    driver.refresh_from_db()
    system = Actor.system("test")
    taken = create_order(
        organisation=organisation, actor=system, data=order_input(order_payload(f"{tag}-TAKEN"))
    )
    accept_offer(offer_id=offer_to(driver, taken).id, driver=driver, actor=Actor.for_user(user))
    offered = create_order(
        organisation=organisation, actor=system, data=order_input(order_payload(f"{tag}-OFFERED"))
    )
    pending = offer_to(driver, offered, incentive_minor=250)
    taken.refresh_from_db()
    device = issue_device_token(user=user, name=f"{tag} phone")
    done = deliver_one(driver, user, f"{tag}-DONE")
    quote = quote_cash_out(driver=driver, amount_minor=100)
    return DriverApp(
        user,
        driver,
        device,
        taken,
        pending,
        suggest_to(driver),
        Earning.objects.get(order=done),
        quote,
        warning_for(driver),
    )


def png_file(name: str = "door.png") -> ContentFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 120, 30)).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name=name)


def deliver_one(driver: Driver, user: User, ref: str, **payload) -> Order:
    """An order offered to, accepted, carried and delivered (with a photo) by the driver."""
    organisation = driver.organisation
    order = create_order(
        organisation=organisation, actor=Actor.system("test"), data=order_input(order_payload(ref, **payload))
    )
    accept_offer(
        offer_id=offer_to(driver, order, incentive_minor=0).id, driver=driver, actor=Actor.for_user(user)
    )
    for step in ("start_pickup", "arrive_pickup", "pick_up", "arrive_dropoff"):
        transition_order(
            order_id=order.id,
            organisation=organisation,
            action=step,
            actor=Actor.for_user(user),
            held_by=driver,
        )
    deliver_order(
        order_id=order.id,
        organisation=organisation,
        driver=driver,
        actor=Actor.for_user(user),
        location=order.dropoff_location,
        captured_at=timezone.now(),
        photo=png_file(),
    )
    return order


def driver_snapshot(app: DriverApp) -> dict:
    """What another driver's calls could change about this driver's work."""
    return {
        "orders": list(
            Order.objects.filter(driver=app.driver).order_by("id").values_list("id", "status", "updated_at")
        ),
        "offers": list(
            Offer.objects.filter(driver=app.driver).order_by("id").values_list("id", "status", "responded_at")
        ),
        "devices": list(
            DeviceToken.objects.filter(user=app.user).order_by("id").values_list("id", "revoked_at")
        ),
        "driver": Driver.objects.filter(id=app.driver.id).values_list("status", "is_online").get(),
        "stops": list(
            Stop.objects.filter(route__driver=app.driver)
            .order_by("id")
            .values_list("id", "sequence", "planned_arrival_at", "completed_at")
        ),
        "earnings": list(
            Earning.objects.filter(driver=app.driver)
            .order_by("id")
            .values_list("id", "total_minor", "reversed_at")
        ),
        "payouts": Payout.objects.filter(driver=app.driver).count(),
        "disputes": Dispute.objects.filter(driver=app.driver).count(),
        "quotes": list(CashOutQuote.objects.filter(driver=app.driver).values_list("id", "payout_id")),
        "ledger_entries": LedgerEntry.objects.filter(account__driver=app.driver).count(),
        "suggestions": list(
            RepositionSuggestion.objects.filter(driver=app.driver)
            .order_by("id")
            .values_list("id", "status", "responded_at")
        ),
    }
