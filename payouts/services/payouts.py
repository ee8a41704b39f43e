"""Paying drivers: instant cash-out (a quote with its fee, then a confirm), the daily cycle
(guaranteed-minimum top-ups, then a batch payout of every balance), the provider's answers.

A payout is taken from the driver's payable balance in one transaction that holds their
payable account locked and checks the balance first, so two cash-outs never both spend the
same money. The provider is called outside that transaction (no row stays locked during a
network call) with the payout's idempotency key; its answer is recorded in another. A payout
still PENDING (the process died, the provider was unreachable) is sent again with the same key.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.db import lock
from core.events import record_event
from core.models import DomainEvent
from fleet.models import Driver
from identity.models import Organisation
from payouts import pricing
from payouts.models import (
    Account,
    AccountKind,
    CashOutQuote,
    Earning,
    Payout,
    PayoutAccount,
    PayoutCycle,
    PayoutStatus,
    TransactionKind,
)
from payouts.providers import SendResult, get_provider
from payouts.services.earnings import rule_for
from payouts.services.ledger import balance_minor, driver_payable, org_account, post_transaction

QUOTE_TTL = timedelta(minutes=2)


def owed_minor(driver: Driver, currency: str) -> int:
    """What the organisation owes the driver now (their payable account's credit balance)."""
    return -balance_minor(driver_payable(driver, currency))


def instant_fee(amount_minor: int) -> int:
    return pricing.instant_fee_minor(
        amount_minor,
        basis_points=settings.PAYOUT_INSTANT_FEE_BASIS_POINTS,
        minimum_minor=settings.PAYOUT_INSTANT_FEE_MIN_MINOR,
    )


def _check_amount(amount_minor) -> None:
    if type(amount_minor) is not int or amount_minor <= 0:
        raise ValidationError({"amount_minor": "A whole number of minor units, more than 0."})


@transaction.atomic
def quote_cash_out(*, driver: Driver, amount_minor: int) -> CashOutQuote:
    """What an instant cash-out of `amount_minor` would cost and pay, for the driver to confirm."""
    _check_amount(amount_minor)
    currency = driver.organisation.currency
    owed = owed_minor(driver, currency)
    if amount_minor > owed:
        raise ValidationError({"amount_minor": f"Above your balance of {pricing.money(owed, currency)}."})
    fee = instant_fee(amount_minor)
    if fee >= amount_minor:
        raise ValidationError(
            {"amount_minor": f"The instant fee is {pricing.money(fee, currency)}; cash out more than that."}
        )
    return CashOutQuote.objects.create(
        driver=driver,
        currency=currency,
        amount_minor=amount_minor,
        fee_minor=fee,
        expires_at=timezone.now() + QUOTE_TTL,
    )


def confirm_cash_out(*, driver: Driver, quote_id, actor: Actor) -> Payout:
    """Take the quoted amount from the balance (checked under the account's lock) and send it;
    confirming the same quote again returns the same payout."""
    with transaction.atomic():
        quote = lock(CashOutQuote.objects.filter(id=quote_id, driver=driver)).first()
        if quote is None:
            raise ValidationError({"quote_id": "No such quote of yours."})
        if quote.payout_id is None:
            if quote.expires_at <= timezone.now():
                raise ValidationError({"quote_id": "The quote has expired; ask for a new one."})
            payout = _take_payout(
                driver=driver,
                currency=quote.currency,
                amount_minor=quote.amount_minor,
                fee_minor=quote.fee_minor,
                kind=Payout.Kind.INSTANT,
                key=f"cashout:{quote.id}",
                actor=actor,
            )
            quote.payout = payout
            quote.save(update_fields=["payout"])
        payout_id = quote.payout_id
    return send_payout(payout_id=payout_id)


def _take_payout(
    *,
    driver: Driver,
    currency: str,
    amount_minor: int,
    fee_minor: int,
    kind: str,
    key: str,
    actor: Actor,
    cycle=None,
) -> Payout:
    """Inside a transaction: lock the payable account, check the balance, post the payout."""
    payable = driver_payable(driver, currency)
    lock(Account.objects.filter(id=payable.id)).get()
    owed = -balance_minor(payable)
    if amount_minor > owed:
        raise ValidationError({"amount_minor": f"Above your balance of {pricing.money(owed, currency)}."})
    net = amount_minor - fee_minor
    postings = [
        (payable, amount_minor),
        (org_account(driver.organisation_id, AccountKind.PAYOUT_CLEARING, currency), -net),
    ]
    if fee_minor:
        postings.append((org_account(driver.organisation_id, AccountKind.FEES, currency), -fee_minor))
    label = "Instant cash-out" if kind == Payout.Kind.INSTANT else "Payout"
    posted = post_transaction(
        organisation_id=driver.organisation_id,
        kind=TransactionKind.PAYOUT,
        key=key,
        currency=currency,
        description=f"{label} {pricing.money(net, currency)}"
        + (f" (fee {pricing.money(fee_minor, currency)})" if fee_minor else ""),
        postings=postings,
        driver=driver,
    )
    payout = Payout.objects.create(
        organisation_id=driver.organisation_id,
        driver=driver,
        cycle=cycle,
        kind=kind,
        currency=currency,
        amount_minor=amount_minor,
        fee_minor=fee_minor,
        net_minor=net,
        provider=settings.PAYOUT_PROVIDER,
        idempotency_key=f"fleetroot-{key}",
        transaction=posted,
    )
    _payout_event(payout, "payout.created", actor, reason=posted.description)
    return payout


def _payout_event(payout: Payout, event_type: str, actor: Actor, reason: str = "") -> None:
    record_event(
        organisation=payout.organisation_id,
        event_type=event_type,
        subject_type="payout",
        subject_id=payout.id,
        actor=actor,
        reason=reason,
        payload={
            "payout_id": str(payout.id),
            "driver_id": str(payout.driver_id),
            "kind": payout.kind,
            "amount_minor": payout.amount_minor,
            "fee_minor": payout.fee_minor,
            "net_minor": payout.net_minor,
            "currency": payout.currency,
            "status": payout.status,
        },
    )


def send_payout(*, payout_id) -> Payout:
    """Ask the provider to move a PENDING payout's money, then record its answer."""
    payout = Payout.objects.select_related("driver").get(id=payout_id)
    if payout.status != PayoutStatus.PENDING:
        return payout
    provider = get_provider(payout.provider)
    account = PayoutAccount.objects.filter(driver=payout.driver, provider=provider.name).first()
    if provider.name != "ledger" and (account is None or not account.payouts_enabled):
        result = SendResult(
            status=PayoutStatus.FAILED,
            failure_reason="Your payout account is not set up yet; finish onboarding and the money is paid again.",
        )
    else:
        result = provider.send(
            idempotency_key=payout.idempotency_key,
            account_id=account.external_id if account else "",
            amount_minor=payout.net_minor,
            currency=payout.currency,
            instant=payout.kind == Payout.Kind.INSTANT,
        )
    return record_payout_result(
        payout_id=payout.id, result=result, actor=Actor.system(f"payouts-{provider.name}")
    )


@transaction.atomic
def record_payout_result(*, payout_id, result: SendResult, actor: Actor) -> Payout:
    """The provider's word on a payout: paid (settle the clearing account), in transit, or
    failed (the payout is reversed in the ledger: the money is the driver's again)."""
    payout = lock(Payout.objects.filter(id=payout_id)).get()
    if result.status == PayoutStatus.PENDING or result.status == payout.status:
        return payout
    if payout.status == PayoutStatus.FAILED:
        return payout  # reversed already; a late word changes nothing
    was_paid = payout.status == PayoutStatus.PAID
    payout.provider_ref = result.provider_ref or payout.provider_ref
    payout.provider_payout_ref = result.provider_payout_ref or payout.provider_payout_ref
    clearing = org_account(payout.organisation_id, AccountKind.PAYOUT_CLEARING, payout.currency)
    platform = org_account(payout.organisation_id, AccountKind.PLATFORM, payout.currency)
    if result.status == PayoutStatus.PAID:
        post_transaction(
            organisation_id=payout.organisation_id,
            kind=TransactionKind.PAYOUT_SETTLED,
            key=f"payout-settled:{payout.id}",
            currency=payout.currency,
            description=f"Payout {payout.id} settled by {payout.provider}",
            postings=[(clearing, payout.net_minor), (platform, -payout.net_minor)],
            driver=payout.driver,
        )
        if result.instant_refused and payout.fee_minor:
            post_transaction(
                organisation_id=payout.organisation_id,
                kind=TransactionKind.ADJUSTMENT,
                key=f"payout-fee-refund:{payout.id}",
                currency=payout.currency,
                description=result.failure_reason,
                postings=[
                    (
                        org_account(payout.organisation_id, AccountKind.FEES, payout.currency),
                        payout.fee_minor,
                    ),
                    (driver_payable(payout.driver, payout.currency), -payout.fee_minor),
                ],
                driver=payout.driver,
            )
            payout.failure_reason = result.failure_reason
    elif result.status == PayoutStatus.FAILED:
        postings = [
            (driver_payable(payout.driver, payout.currency), -payout.amount_minor),
            (platform if was_paid else clearing, payout.net_minor),
        ]
        if payout.fee_minor:
            postings.append(
                (org_account(payout.organisation_id, AccountKind.FEES, payout.currency), payout.fee_minor)
            )
        post_transaction(
            organisation_id=payout.organisation_id,
            kind=TransactionKind.PAYOUT_REVERSAL,
            key=f"payout-reversal:{payout.id}",
            currency=payout.currency,
            description=f"Payout failed, returned to your balance: {result.failure_reason}",
            postings=postings,
            driver=payout.driver,
        )
        payout.failure_reason = result.failure_reason
    payout.status = result.status
    payout.save()
    if result.status in (PayoutStatus.PAID, PayoutStatus.FAILED):
        _payout_event(payout, f"payout.{result.status.lower()}", actor, reason=result.failure_reason)
    return payout


def send_pending_payouts(*, older_than: timedelta = timedelta(seconds=30)) -> int:
    """Send again the payouts left PENDING (same idempotency keys: never paid twice)."""
    due = Payout.objects.filter(status=PayoutStatus.PENDING, created_at__lt=timezone.now() - older_than)
    sent = 0
    for payout_id in due.values_list("id", flat=True)[:200]:
        send_payout(payout_id=payout_id)
        sent += 1
    return sent


# --- the daily cycle ---------------------------------------------------------------------


def online_sessions(driver_id, *, before: datetime) -> list[tuple[float, float]]:
    """(from, to) timestamps of the driver's time online, from their online/offline events."""
    moments = DomainEvent.objects.filter(
        subject_type="driver",
        subject_id=str(driver_id),
        event_type__in=["driver.online", "driver.offline"],
        occurred_at__lt=before,
    ).order_by("occurred_at", "sequence")
    sessions, since = [], None
    for event_type, at in moments.values_list("event_type", "occurred_at"):
        if event_type == "driver.online" and since is None:
            since = at.timestamp()
        elif event_type == "driver.offline" and since is not None:
            sessions.append((since, at.timestamp()))
            since = None
    if since is not None:
        sessions.append((since, before.timestamp()))
    return sessions


def _guarantee_topup(driver: Driver, cycle: PayoutCycle, currency: str) -> None:
    vehicle = driver.vehicles.filter(is_active=True).first()
    rule = rule_for(
        organisation_id=driver.organisation_id,
        zone_id=driver.home_zone_id,
        vehicle_type=vehicle.type if vehicle else "",
        currency=currency,
        at=cycle.period_end - timedelta(microseconds=1),
    )
    if rule is None or not rule.guaranteed_hourly_minor:
        return
    seconds = pricing.online_seconds(
        online_sessions(driver.id, before=cycle.period_end),
        start=cycle.period_start.timestamp(),
        end=cycle.period_end.timestamp(),
    )
    if not seconds:
        return
    earned = 0
    for breakdown in Earning.objects.filter(
        driver=driver,
        currency=currency,
        reversed_at__isnull=True,
        created_at__gte=cycle.period_start,
        created_at__lt=cycle.period_end,
    ).values_list("breakdown", flat=True):
        earned += breakdown["total_minor"] - sum(
            x["amount_minor"] for x in breakdown["lines"] if x["code"] == "tip"
        )
    topup, text = pricing.guarantee_topup(
        hourly_minor=rule.guaranteed_hourly_minor, online_s=seconds, earned_minor=earned, currency=currency
    )
    if topup:
        post_transaction(
            organisation_id=driver.organisation_id,
            kind=TransactionKind.GUARANTEE_TOPUP,
            key=f"guarantee:{driver.id}:{cycle.period_start.isoformat()}",
            currency=currency,
            description=text,
            postings=[
                (org_account(driver.organisation_id, AccountKind.PLATFORM, currency), topup),
                (driver_payable(driver, currency), -topup),
            ],
            driver=driver,
        )


def run_payout_cycle(
    *, organisation: Organisation, period_start: datetime, period_end: datetime
) -> PayoutCycle:
    """Close a period once: guarantee top-ups, then a batch payout of every positive balance
    (adjustments from disputes included), then send them."""
    actor = Actor.system("daily-payouts")
    with transaction.atomic():
        existing = PayoutCycle.objects.filter(organisation=organisation, period_start=period_start).first()
        if existing is not None:
            return existing
        cycle = PayoutCycle.objects.create(
            organisation=organisation, period_start=period_start, period_end=period_end
        )
        currency = organisation.currency
        drivers = Driver.objects.filter(organisation=organisation).order_by("id")
        for driver in drivers:
            _guarantee_topup(driver, cycle, currency)
        payout_ids = []
        for driver in drivers:
            owed = owed_minor(driver, currency)
            if owed > 0:
                payout = _take_payout(
                    driver=driver,
                    currency=currency,
                    amount_minor=owed,
                    fee_minor=0,
                    kind=Payout.Kind.BATCH,
                    key=f"batch:{cycle.id}:{driver.id}",
                    actor=actor,
                    cycle=cycle,
                )
                payout_ids.append(payout.id)
    for payout_id in payout_ids:
        send_payout(payout_id=payout_id)
    return cycle


def last_full_day(organisation: Organisation, now: datetime) -> tuple[datetime, datetime]:
    """Yesterday in the organisation's time zone, as [start, end) in UTC."""
    local_today = now.astimezone(ZoneInfo(organisation.timezone or "UTC")).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    start = (local_today - timedelta(days=1)).replace(tzinfo=local_today.tzinfo)
    return start.astimezone(UTC), local_today.astimezone(UTC)


def run_due_cycles(*, now: datetime | None = None) -> int:
    """Beat task body: close yesterday's cycle of every organisation that has not yet."""
    now = now or timezone.now()
    closed = 0
    for organisation in Organisation.objects.order_by("slug"):
        start, end = last_full_day(organisation, now)
        if not PayoutCycle.objects.filter(organisation=organisation, period_start=start).exists():
            run_payout_cycle(organisation=organisation, period_start=start, period_end=end)
            closed += 1
    return closed


# --- the driver's provider account -------------------------------------------------------


def onboarding_link(*, driver: Driver, refresh_url: str, return_url: str) -> str:
    """The provider's onboarding page for the driver (their account is opened on first use)."""
    provider = get_provider()
    with transaction.atomic():
        lock(Driver.objects.filter(id=driver.id)).get()
        account = PayoutAccount.objects.filter(driver=driver).first()
        if account is None:
            external_id = provider.create_account(
                driver_id=str(driver.id), email=driver.email, country=settings.STRIPE_ACCOUNT_COUNTRY
            )
            account = PayoutAccount.objects.create(
                driver=driver, provider=provider.name, external_id=external_id
            )
    return provider.onboarding_link(
        account_id=account.external_id, refresh_url=refresh_url, return_url=return_url
    )
