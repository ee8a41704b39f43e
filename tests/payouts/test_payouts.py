"""Instant cash-out (a quote with its fee, then a confirm), the daily cycle (guarantee top-ups,
batch payouts, once), failed payouts reversed, and the ledger_audit command."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from core.actors import Actor
from core.models import DomainEvent
from payouts.audit import audit
from payouts.models import CashOutQuote, Payout, PayoutCycle, PayoutStatus, TransactionKind
from payouts.providers import SendResult
from payouts.services.payouts import (
    confirm_cash_out,
    last_full_day,
    owed_minor,
    quote_cash_out,
    record_payout_result,
    run_due_cycles,
    run_payout_cycle,
)
from tests.api.conftest import error_of
from tests.conftest import post
from tests.payouts.conftest import deliver_by_api, order_at_the_door


@pytest.fixture
def earned(org, courier, tariffs):
    """The courier delivered one order: their balance is its earning."""
    deliver_by_api(courier.app, order_at_the_door(org, courier, tip_minor=500))
    return owed_minor(courier.driver, "EUR")


def test_cash_out_shows_the_fee_first_then_pays_once(courier, earned):
    assert earned > 700
    quote = post(courier.app, "/api/v1/driver/cashout/quote", {"amount_minor": 700})
    assert quote.status_code == 201, quote.content
    body = quote.json()
    assert (body["amount_minor"], body["fee_minor"], body["net_minor"]) == (700, 50, 650)
    assert owed_minor(courier.driver, "EUR") == earned  # a quote moves nothing
    confirmed = post(courier.app, "/api/v1/driver/cashout/confirm", {"quote_id": body["id"]})
    assert confirmed.status_code == 200, confirmed.content
    payout = confirmed.json()
    assert (payout["kind"], payout["status"], payout["net_minor"], payout["provider"]) == (
        "instant",
        "PAID",
        650,
        "ledger",
    )
    again = post(courier.app, "/api/v1/driver/cashout/confirm", {"quote_id": body["id"]})
    assert again.json()["id"] == payout["id"]
    assert Payout.objects.count() == 1
    assert owed_minor(courier.driver, "EUR") == earned - 700
    report = audit()
    assert report["unbalanced"] == [] and report["payable_total"] == earned - 700
    assert {"payout.created", "payout.paid"} <= set(DomainEvent.objects.values_list("event_type", flat=True))


@pytest.mark.parametrize(
    "body, field",
    [
        ({"amount_minor": -5}, "amount_minor"),
        ({"amount_minor": 12.5}, "amount_minor"),
        ({"amount_minor": "100"}, "amount_minor"),
        ({"amount_minor": 10**9}, "amount_minor"),  # above the balance
        ({"amount_minor": 40}, "amount_minor"),  # not more than the fee
        ({"amount": 100}, "amount"),
    ],
)
def test_bad_cash_outs_are_refused_and_nothing_moves(courier, earned, body, field):
    refused = post(courier.app, "/api/v1/driver/cashout/quote", body)
    assert refused.status_code == 400
    assert field in error_of(refused)["fields"]
    assert not CashOutQuote.objects.exists() and not Payout.objects.exists()
    assert owed_minor(courier.driver, "EUR") == earned


def test_an_expired_quote_or_a_spent_balance_is_refused(courier, earned):
    quote = quote_cash_out(driver=courier.driver, amount_minor=earned)
    CashOutQuote.objects.filter(id=quote.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = post(courier.app, "/api/v1/driver/cashout/confirm", {"quote_id": str(quote.id)})
    assert refused.status_code == 400 and "expired" in error_of(refused)["fields"]["quote_id"][0]
    first = quote_cash_out(driver=courier.driver, amount_minor=earned)
    second = quote_cash_out(driver=courier.driver, amount_minor=earned)
    confirm_cash_out(driver=courier.driver, quote_id=first.id, actor=Actor.system("t"))
    with pytest.raises(ValidationError) as caught:
        confirm_cash_out(driver=courier.driver, quote_id=second.id, actor=Actor.system("t"))
    assert "Above your balance" in caught.value.message_dict["amount_minor"][0]
    assert owed_minor(courier.driver, "EUR") == 0


def test_a_failed_payout_is_reversed_in_the_ledger(courier, earned):
    quote = quote_cash_out(driver=courier.driver, amount_minor=earned)
    payout = confirm_cash_out(driver=courier.driver, quote_id=quote.id, actor=Actor.system("t"))
    assert owed_minor(courier.driver, "EUR") == 0
    failed = record_payout_result(
        payout_id=payout.id,
        result=SendResult(status=PayoutStatus.FAILED, failure_reason="Card expired"),
        actor=Actor.system("provider"),
    )
    assert failed.status == PayoutStatus.FAILED
    assert owed_minor(courier.driver, "EUR") == earned  # fee refunded too
    kinds = list(failed.transaction.__class__.objects.values_list("kind", flat=True))
    assert TransactionKind.PAYOUT_REVERSAL in kinds
    record_payout_result(
        payout_id=payout.id, result=SendResult(status=PayoutStatus.FAILED), actor=Actor.system("p")
    )
    assert owed_minor(courier.driver, "EUR") == earned  # reversed once
    assert audit()["unbalanced"] == []


def test_the_daily_cycle_tops_up_the_guarantee_and_pays_every_balance_once(org, courier, tariffs):
    deliver_by_api(courier.app, order_at_the_door(org, courier, tip_minor=0))
    earning = owed_minor(courier.driver, "EUR")
    now = timezone.now()
    start, end = now - timedelta(hours=1), now + timedelta(minutes=1)
    # Online for the whole hour (the courier went online when the fixture made them).
    online = DomainEvent.objects.get(event_type="driver.online", subject_id=str(courier.driver.id))
    DomainEvent.objects.filter(id=online.id).update(occurred_at=start - timedelta(minutes=5))
    cycle = run_payout_cycle(organisation=org, period_start=start, period_end=end)
    online_s = (end - start).total_seconds()
    topup = round(1200 * online_s / 3600) - earning
    assert topup > 0
    payout = Payout.objects.get(cycle=cycle)
    assert (payout.kind, payout.amount_minor, payout.status) == ("batch", earning + topup, PayoutStatus.PAID)
    assert owed_minor(courier.driver, "EUR") == 0
    assert run_payout_cycle(organisation=org, period_start=start, period_end=end) == cycle
    assert Payout.objects.count() == 1
    statement = courier.app.get(f"/api/v1/driver/statement?cycle={cycle.id}").json()
    kinds = [line["kind"] for line in statement["lines"]]
    assert kinds == ["earning", "guarantee_topup", "payout"]
    assert statement["closing_minor"] == 0
    csv_text = courier.app.get(f"/api/v1/driver/statement?cycle={cycle.id}&as=csv").content.decode()
    assert "guarantee_topup" in csv_text and csv_text.startswith("posted_at,kind")
    html = courier.app.get(f"/api/v1/driver/statement?cycle={cycle.id}&as=html").content.decode()
    assert "Statement for Courier c1" in html and "Closing balance" in html
    assert audit()["unbalanced"] == []


def test_due_cycles_close_yesterday_once_per_organisation(org):
    now = timezone.now()
    assert run_due_cycles(now=now) >= 1
    assert run_due_cycles(now=now) == 0
    start, end = last_full_day(org, now)
    assert PayoutCycle.objects.filter(organisation=org, period_start=start, period_end=end).count() == 1
    assert end - start == timedelta(days=1)


def test_ledger_audit_prints_json_and_fails_on_an_unbalanced_ledger(org, courier, earned, capsys):
    call_command("ledger_audit", "--json")
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"transactions", "unbalanced", "accounts", "payable_total", "currency"}
    assert report["unbalanced"] == [] and report["payable_total"] == earned and report["currency"] == "EUR"
    if connection.vendor == "sqlite":  # PostgreSQL refuses the broken row at commit; SQLite records it
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO payouts_ledgertransaction (id, organisation_id, kind, key, currency, description, posted_at)"
                " VALUES ('0123456789abcdef0123456789abcdef', %s, 'adjustment', 'broken', 'EUR', 'x', %s)",
                [org.id.hex, timezone.now().isoformat()],
            )
        with pytest.raises(SystemExit) as caught:
            call_command("ledger_audit", "--json")
        assert caught.value.code == 1
        assert json.loads(capsys.readouterr().out)["unbalanced"] == ["01234567-89ab-cdef-0123-456789abcdef"]
