"""Posting to the ledger: balanced transactions of integer minor units, each posted once.

Every write to the ledger goes through post_transaction. It refuses a transaction that does
not sum to zero, an amount that is not a whole non-zero number, or a currency other than its
accounts'; it locks the drivers' payable accounts it touches (in one order, so two postings
never deadlock) and returns the first transaction when its key was posted before.
"""

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from core.db import lock
from payouts.models import Account, AccountKind, LedgerEntry, LedgerTransaction, currency_code


def account_for(*, organisation_id, kind: str, currency: str, driver_id=None, client_id=None) -> Account:
    """The one account of that kind and owner in that currency, made on first use."""
    try:
        currency_code(currency)
    except ValidationError:
        raise ValidationError({"currency": f"'{currency}' is not an ISO 4217 code."}) from None
    lookup = {"organisation_id": organisation_id, "kind": kind, "currency": currency}
    if kind == AccountKind.DRIVER_PAYABLE:
        lookup["driver_id"] = driver_id
    elif kind == AccountKind.CLIENT_RECEIVABLE:
        lookup["client_id"] = client_id
    account = Account.objects.filter(**lookup).first()
    if account is not None:
        return account
    Account.objects.bulk_create([Account(**lookup)], ignore_conflicts=True)
    return Account.objects.get(**lookup)


def balance_minor(account: Account) -> int:
    """Debits minus credits: the sum of the account's entries."""
    return account.entries.aggregate(total=Sum("amount_minor"))["total"] or 0


def check_postings(postings: Sequence[tuple[Account, int]], *, currency: str, organisation_id) -> None:
    """The rules of a transaction, as errors naming what is wrong."""
    if len(postings) < 2:
        raise ValidationError({"entries": "A transaction needs at least two entries."})
    for index, (account, amount) in enumerate(postings):
        if type(amount) is not int:
            raise ValidationError(
                {f"entries[{index}].amount_minor": "Must be a whole number of minor units."}
            )
        if amount == 0:
            raise ValidationError({f"entries[{index}].amount_minor": "Must not be zero."})
        if account.currency != currency:
            raise ValidationError(
                {
                    f"entries[{index}].currency": f"The account is in {account.currency}; "
                    f"the transaction is in {currency}."
                }
            )
        if str(account.organisation_id) != str(organisation_id):
            raise ValidationError({f"entries[{index}].account": "The account is another organisation's."})
    total = sum(amount for _account, amount in postings)
    if total != 0:
        raise ValidationError({"entries": f"The entries sum to {total}, not zero."})


@transaction.atomic
def post_transaction(
    *,
    organisation_id,
    kind: str,
    key: str,
    currency: str,
    description: str,
    postings: Sequence[tuple[Account, int]],
    order=None,
    driver=None,
    reverses: LedgerTransaction | None = None,
) -> LedgerTransaction:
    """Post one balanced transaction, once per `key` in the organisation."""
    check_postings(postings, currency=currency, organisation_id=organisation_id)
    # Only drivers' payable accounts are locked (a payout checks their balance under the lock);
    # the organisation's own accounts take entries from every delivery at once, unlocked.
    payable_ids = sorted({str(a.id) for a, _amount in postings if a.kind == AccountKind.DRIVER_PAYABLE})
    if payable_ids:
        list(lock(Account.objects.filter(id__in=payable_ids)).order_by("id").values_list("id", flat=True))
    existing = LedgerTransaction.objects.filter(organisation_id=organisation_id, key=key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            posted = LedgerTransaction(
                organisation_id=organisation_id,
                kind=kind,
                key=key,
                currency=currency,
                description=description,
                order=order,
                driver=driver,
                reverses=reverses,
            )
            posted.save()
            LedgerEntry.objects.bulk_create(
                [
                    LedgerEntry(transaction=posted, account=account, amount_minor=amount, currency=currency)
                    for account, amount in postings
                ]
            )
    except IntegrityError:
        # Another transaction posted the same key between our check and insert.
        return LedgerTransaction.objects.get(organisation_id=organisation_id, key=key)
    return posted


def reverse_transaction(
    posted: LedgerTransaction, *, kind: str, key: str, description: str
) -> LedgerTransaction:
    """A new transaction with every entry of `posted` negated (the ledger is never edited)."""
    postings = [(entry.account, -entry.amount_minor) for entry in posted.entries.select_related("account")]
    return post_transaction(
        organisation_id=posted.organisation_id,
        kind=kind,
        key=key,
        currency=posted.currency,
        description=description,
        postings=postings,
        order=posted.order,
        driver=posted.driver,
        reverses=posted,
    )


def driver_payable(driver, currency: str) -> Account:
    return account_for(
        organisation_id=driver.organisation_id,
        kind=AccountKind.DRIVER_PAYABLE,
        currency=currency,
        driver_id=driver.id,
    )


def org_account(organisation_id, kind: str, currency: str) -> Account:
    return account_for(organisation_id=organisation_id, kind=kind, currency=currency)


@transaction.atomic
def purge_organisation_ledger(organisation_id) -> None:
    """Delete an organisation's whole settlement, for wiping the organisation itself (the
    demo's reset): the only deletion the ledger allows, and only of everything at once."""
    from payouts.models import (
        CashOutQuote,
        Dispute,
        Earning,
        EarningRule,
        Payout,
        PayoutAccount,
        PayoutCycle,
        PriceList,
    )

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('fleetroot.ledger_purge', 'on', true)")
    Dispute.objects.filter(organisation_id=organisation_id).delete()
    CashOutQuote.objects.filter(driver__organisation_id=organisation_id).delete()
    Payout.objects.filter(organisation_id=organisation_id).delete()
    Earning.objects.filter(organisation_id=organisation_id).delete()
    PayoutAccount.objects.filter(driver__organisation_id=organisation_id).delete()
    entries = LedgerEntry.objects.filter(transaction__organisation_id=organisation_id)
    entries._raw_delete(entries.db)
    ledger = LedgerTransaction.objects.filter(organisation_id=organisation_id)
    ledger.filter(reverses__isnull=False)._raw_delete(ledger.db)
    ledger._raw_delete(ledger.db)
    Account.objects.filter(organisation_id=organisation_id).delete()
    PayoutCycle.objects.filter(organisation_id=organisation_id).delete()
    EarningRule.objects.filter(organisation_id=organisation_id).delete()
    PriceList.objects.filter(organisation_id=organisation_id).delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('fleetroot.ledger_purge', 'off', true)")
