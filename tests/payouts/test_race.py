"""1,000 concurrent proofs of delivery and cash-outs on PostgreSQL, each thread on its own
connection: no earning posted twice, no payout beyond a balance, the ledger balances.

Prints its figures (the machine is shared; timings are noisy)."""

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import OperationalError, connection
from django.utils import timezone

from core.actors import Actor
from core.exceptions import ConcurrentChange, InvalidTransition
from dispatch.models import ProofOfDelivery
from dispatch.services.orders import deliver_order
from identity.models import Organisation
from payouts.audit import audit
from payouts.models import Earning, Payout, PayoutStatus
from payouts.services.payouts import confirm_cash_out, owed_minor, quote_cash_out
from payouts.services.rules import publish_earning_rule
from tests.api.conftest import png_file
from tests.payouts.conftest import TARIFFS_FROM, make_courier, order_at_the_door

pytestmark = [
    pytest.mark.skipif(settings.DATABASE_IS_SPATIALITE, reason="a race on row locks is PostgreSQL's"),
    pytest.mark.django_db(transaction=True),
]

DRIVERS, ORDERS_EACH, POD_TRIES, CASH_OUTS = 10, 10, 4, 600  # 400 PODs + 600 cash-outs
THREADS = 8


def test_concurrent_proofs_and_cash_outs_pay_nobody_twice():
    setup_started = time.perf_counter()
    org = Organisation.objects.create(slug="race", name="Race", currency="EUR")
    publish_earning_rule(organisation=org, effective_from=TARIFFS_FROM, base_minor=250, per_km_minor=60)
    couriers = [make_courier(org, f"r{i}", f"+35840100{i:04d}") for i in range(DRIVERS)]
    orders = [
        (c, order_at_the_door(org, c, ref=f"R-{i}-{j}"))
        for i, c in enumerate(couriers)
        for j in range(ORDERS_EACH)
    ]
    image = png_file().read()
    rng = random.Random(7)
    jobs = [("pod", courier, order) for courier, order in orders for _ in range(POD_TRIES)]
    jobs += [("cash_out", rng.choice(couriers), rng.randrange(100, 900)) for _ in range(CASH_OUTS)]
    rng.shuffle(jobs)
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def run(job):
        kind, courier, what = job
        try:
            if kind == "pod":
                deliver_order(
                    order_id=what.id,
                    organisation=org,
                    driver=courier.driver,
                    actor=Actor.for_user(courier.user),
                    location=what.dropoff_location,
                    captured_at=timezone.now(),
                    photo=ContentFile(image, name="door.png"),
                )
                result = "pod accepted"
            else:
                quote = quote_cash_out(driver=courier.driver, amount_minor=what)
                confirm_cash_out(driver=courier.driver, quote_id=quote.id, actor=Actor.for_user(courier.user))
                result = "cash-out paid"
        except (ValidationError, InvalidTransition, ConcurrentChange) as exc:
            result = f"{kind} refused: {type(exc).__name__}"
        except OperationalError:
            result = f"{kind} refused: busy (lock timeout)"
        finally:
            connection.close()
        with lock:
            outcomes[result] += 1

    setup_s = time.perf_counter() - setup_started
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(run, jobs))
    elapsed = time.perf_counter() - started
    # A phone whose proof was refused as busy sends it again: once more for each such order.
    undelivered = [(c, o) for c, o in orders if not ProofOfDelivery.objects.filter(order=o).exists()]
    for courier, order in undelivered:
        run(("pod", courier, order))

    earnings = Earning.objects.filter(organisation=org, reversed_at__isnull=True)
    assert earnings.count() == len(orders) == ProofOfDelivery.objects.filter(order__organisation=org).count()
    assert sorted(earnings.values_list("order_id", flat=True)) == sorted(o.id for _c, o in orders)
    paid_total = fee_total = 0
    for courier in couriers:
        earned = sum(earnings.filter(driver=courier.driver).values_list("total_minor", flat=True))
        payouts = Payout.objects.filter(driver=courier.driver).exclude(status=PayoutStatus.FAILED)
        taken = sum(payouts.values_list("amount_minor", flat=True))
        owed = owed_minor(courier.driver, "EUR")
        assert owed >= 0, f"{courier.driver.name} went negative: {owed}"
        assert owed == earned - taken
        paid_total += taken
        fee_total += sum(payouts.values_list("fee_minor", flat=True))
    report = audit(organisation_id=org.id)
    assert report["unbalanced"] == [] and report["mismatched_currency"] == [] and report["ledger_sum"] == 0
    earned_total = sum(earnings.values_list("total_minor", flat=True))
    print(
        f"\nrace: {len(jobs)} operations ({len(orders) * POD_TRIES} PODs for {len(orders)} orders, {CASH_OUTS} cash-outs)"
        f" on {THREADS} threads in {elapsed:.1f} s ({len(jobs) / elapsed:.0f} ops/s; shared 2-core machine;"
        f" set-up {setup_s:.0f} s); {len(undelivered)} orders whose every proof was refused as busy, resent after"
    )
    for result, count in sorted(outcomes.items()):
        print(f"  {result}: {count}")
    print(
        f"  earnings posted: {earnings.count()} (one per order), earned {earned_total} minor EUR,"
        f" paid out {paid_total} (fees {fee_total}), still owed {report['payable_total']};"
        f" ledger: {report['transactions']} transactions, {len(report['unbalanced'])} unbalanced"
    )
    assert outcomes["pod accepted"] == len(orders)  # each order's proof accepted exactly once
    assert earned_total == paid_total + report["payable_total"]
