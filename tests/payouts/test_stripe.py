"""The Stripe Connect adapter against a local HTTP server that answers the Stripe endpoints it
uses (accounts, account links, transfers, payouts), and Stripe's webhooks signed with its
scheme (Stripe-Signature: t=..., v1=HMAC-SHA256 of "t.body")."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest

from payouts.models import Payout, PayoutAccount, PayoutStatus
from payouts.services.payouts import owed_minor, send_pending_payouts
from tests.api.conftest import error_of
from tests.conftest import post
from tests.payouts.conftest import deliver_by_api, order_at_the_door

WEBHOOK_SECRET = "whsec_test_fleetroot"


class FakeStripe(BaseHTTPRequestHandler):
    """Answers like api.stripe.com: form-encoded POSTs, JSON objects, idempotent by key."""

    requests: list = []
    by_key: dict = {}
    payout_status = "pending"
    refuse_instant = False

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        key = self.headers.get("Idempotency-Key")
        self.requests.append(
            {
                "path": self.path,
                "form": form,
                "idempotency_key": key,
                "stripe_account": self.headers.get("Stripe-Account"),
                "authorization": self.headers.get("Authorization"),
            }
        )
        if key and key in self.by_key:
            return self._answer(200, self.by_key[key])
        serial = len(self.requests)
        objects = {
            "/v1/accounts": {"id": f"acct_{serial:04d}", "object": "account", "type": "express"},
            "/v1/account_links": {
                "object": "account_link",
                "url": f"https://connect.stripe.com/setup/e/{form.get('account')}/x{serial}",
                "expires_at": int(time.time()) + 300,
            },
            "/v1/transfers": {
                "id": f"tr_{serial:04d}",
                "object": "transfer",
                "amount": int(form.get("amount", 0)),
                "currency": form.get("currency"),
                "destination": form.get("destination"),
            },
            "/v1/payouts": {
                "id": f"po_{serial:04d}",
                "object": "payout",
                "amount": int(form.get("amount", 0)),
                "method": form.get("method"),
                "status": self.payout_status,
            },
        }
        if self.path not in objects:
            return self._answer(
                404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}
            )
        if self.path == "/v1/payouts" and self.refuse_instant:
            return self._answer(
                400,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "This card does not support instant payouts.",
                    }
                },
            )
        if self.path == "/v1/transfers" and int(form.get("amount", 0)) > 1_000_000:
            return self._answer(
                400,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Insufficient funds in Stripe account.",
                    }
                },
            )
        if key:
            self.by_key[key] = objects[self.path]
        return self._answer(200, objects[self.path])

    def _answer(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def fake_stripe(settings):
    FakeStripe.requests, FakeStripe.by_key, FakeStripe.payout_status = [], {}, "pending"
    FakeStripe.refuse_instant = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStripe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PAYOUT_PROVIDER = "stripe"
    settings.STRIPE_API_KEY = "sk_test_fleetroot"
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{server.server_address[1]}"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    yield FakeStripe
    server.shutdown()
    server.server_close()


def signed(event: dict, *, secret=WEBHOOK_SECRET, at=None) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    timestamp = int(at if at is not None else time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={timestamp},v1={mac}"


def send_event(client, event: dict, **kwargs):
    payload, signature = signed(event, **kwargs)
    return client.post(
        "/webhooks/stripe", payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


def event(event_id: str, kind: str, obj: dict) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "data": {"object": obj},
        "created": int(time.time()),
    }


def test_onboarding_cash_out_and_a_failed_instant_payout_reversed(org, courier, tariffs, fake_stripe, client):
    deliver_by_api(courier.app, order_at_the_door(org, courier, tip_minor=500))
    earned = owed_minor(courier.driver, "EUR")
    onboarding = post(
        courier.app,
        "/api/v1/driver/payout-account/onboarding",
        {"refresh_url": "https://app.example/refresh", "return_url": "https://app.example/done"},
    )
    assert onboarding.status_code == 200, onboarding.content
    account = PayoutAccount.objects.get(driver=courier.driver)
    assert onboarding.json()["url"].startswith(f"https://connect.stripe.com/setup/e/{account.external_id}/")
    created, link = fake_stripe.requests[:2]
    assert created["path"] == "/v1/accounts" and created["form"]["type"] == "express"
    assert created["form"]["capabilities[transfers][requested]"] == "true"
    assert created["authorization"] == "Bearer sk_test_fleetroot"
    assert link["form"] == {
        "account": account.external_id,
        "refresh_url": "https://app.example/refresh",
        "return_url": "https://app.example/done",
        "type": "account_onboarding",
    }
    # Stripe says the account may be paid out.
    enabled = send_event(
        client, event("evt_1", "account.updated", {"id": account.external_id, "payouts_enabled": True})
    )
    assert enabled.status_code == 200, enabled.content
    account.refresh_from_db()
    assert account.payouts_enabled

    quote = post(courier.app, "/api/v1/driver/cashout/quote", {"amount_minor": 700}).json()
    confirmed = post(courier.app, "/api/v1/driver/cashout/confirm", {"quote_id": quote["id"]}).json()
    assert (confirmed["status"], confirmed["provider"], confirmed["net_minor"]) == (
        "IN_TRANSIT",
        "stripe",
        650,
    )
    transfer, payout_call = fake_stripe.requests[2:4]
    assert transfer["path"] == "/v1/transfers"
    assert transfer["form"] == {
        "amount": "650",
        "currency": "eur",
        "destination": account.external_id,
        "metadata[fleetroot_payout]": f"fleetroot-cashout:{quote['id']}",
    }
    assert transfer["idempotency_key"] == f"fleetroot-cashout:{quote['id']}-transfer"
    assert payout_call["path"] == "/v1/payouts" and payout_call["form"]["method"] == "instant"
    assert payout_call["stripe_account"] == account.external_id
    payout = Payout.objects.get(id=confirmed["id"])
    assert payout.provider_payout_ref.startswith("po_")
    assert owed_minor(courier.driver, "EUR") == earned - 700

    failed = event(
        "evt_2", "payout.failed", {"id": payout.provider_payout_ref, "failure_message": "Card declined"}
    )
    answer = send_event(client, failed)
    assert answer.status_code == 200 and "FAILED" in answer.json()["outcome"]
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.FAILED and payout.failure_reason == "Card declined"
    assert owed_minor(courier.driver, "EUR") == earned  # the money and the fee are back

    replayed = send_event(client, failed)
    assert replayed.status_code == 409 and error_of(replayed)["code"] == "replayed"
    assert owed_minor(courier.driver, "EUR") == earned


def test_webhooks_with_a_bad_or_stale_signature_are_refused(org, courier, fake_stripe, client):
    account = PayoutAccount.objects.create(driver=courier.driver, provider="stripe", external_id="acct_x")
    body = event("evt_9", "account.updated", {"id": "acct_x", "payouts_enabled": True})
    for kwargs in ({"secret": "whsec_wrong"}, {"at": time.time() - 3600}):
        refused = send_event(client, body, **kwargs)
        assert refused.status_code == 400
        assert error_of(refused)["code"] == "bad_signature"
    unsigned = client.post("/webhooks/stripe", json.dumps(body), content_type="application/json")
    assert unsigned.status_code == 400
    account.refresh_from_db()
    assert not account.payouts_enabled
    assert send_event(client, body).status_code == 200  # the same event, signed now, is applied


def test_a_batch_payout_without_an_enabled_account_fails_and_is_retried_with_the_same_key(
    org, courier, tariffs, fake_stripe
):
    from datetime import timedelta

    from django.utils import timezone

    from payouts.services.payouts import run_payout_cycle

    deliver_by_api(courier.app, order_at_the_door(org, courier))
    earned = owed_minor(courier.driver, "EUR")
    now = timezone.now()
    run_payout_cycle(
        organisation=org, period_start=now - timedelta(hours=1), period_end=now + timedelta(seconds=1)
    )
    payout = Payout.objects.get(driver=courier.driver)
    assert payout.status == PayoutStatus.FAILED and "not set up" in payout.failure_reason
    assert owed_minor(courier.driver, "EUR") == earned
    assert fake_stripe.requests == []
    # Enabled, the next cycle pays it; an unreachable Stripe leaves it PENDING, resent with its key.
    PayoutAccount.objects.create(
        driver=courier.driver, provider="stripe", external_id="acct_y", payouts_enabled=True
    )
    from django.conf import settings

    base = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens
    later = now + timedelta(hours=2)
    run_payout_cycle(organisation=org, period_start=later - timedelta(hours=1), period_end=later)
    pending = Payout.objects.get(driver=courier.driver, status=PayoutStatus.PENDING)
    assert owed_minor(courier.driver, "EUR") == 0
    settings.STRIPE_API_BASE = base
    assert send_pending_payouts(older_than=timedelta(0)) == 1
    pending.refresh_from_db()
    assert pending.status == PayoutStatus.PAID and pending.provider_ref.startswith("tr_")
    assert [r["idempotency_key"] for r in fake_stripe.requests] == [f"{pending.idempotency_key}-transfer"]


def test_an_instant_payout_refused_after_the_transfer_is_paid_normally_and_its_fee_refunded(
    org, courier, tariffs, fake_stripe
):
    deliver_by_api(courier.app, order_at_the_door(org, courier, tip_minor=500))
    earned = owed_minor(courier.driver, "EUR")
    PayoutAccount.objects.create(
        driver=courier.driver, provider="stripe", external_id="acct_z", payouts_enabled=True
    )
    fake_stripe.refuse_instant = True
    quote = post(courier.app, "/api/v1/driver/cashout/quote", {"amount_minor": 700}).json()
    payout = post(courier.app, "/api/v1/driver/cashout/confirm", {"quote_id": quote["id"]}).json()
    assert payout["status"] == "PAID" and "standard payout schedule" in payout["failure_reason"]
    assert [r["path"] for r in fake_stripe.requests] == ["/v1/transfers", "/v1/payouts"]
    assert owed_minor(courier.driver, "EUR") == earned - 700 + quote["fee_minor"]
