"""The ledger's health in figures: every transaction balanced, every entry in its account's
currency, and what is owed to drivers (read by `manage.py ledger_audit`)."""

from django.db.models import Count, F, Q, Sum

from payouts.models import Account, AccountKind, LedgerEntry, LedgerTransaction


def audit(*, currency: str | None = None, organisation_id=None) -> dict:
    transactions = LedgerTransaction.objects.all()
    entries = LedgerEntry.objects.all()
    accounts = Account.objects.all()
    if organisation_id is not None:
        transactions = transactions.filter(organisation_id=organisation_id)
        entries = entries.filter(transaction__organisation_id=organisation_id)
        accounts = accounts.filter(organisation_id=organisation_id)
    if currency:
        transactions = transactions.filter(currency=currency)
        entries = entries.filter(transaction__currency=currency)
        accounts = accounts.filter(currency=currency)
    unbalanced = sorted(
        str(row["id"])
        for row in transactions.annotate(total=Sum("entries__amount_minor"), lines=Count("entries")).values(
            "id", "total", "lines"
        )
        if (row["total"] or 0) != 0 or row["lines"] < 2
    )
    mismatched = sorted(
        str(pk)
        for pk in entries.filter(
            ~Q(currency=F("account__currency")) | ~Q(currency=F("transaction__currency"))
        ).values_list("id", flat=True)
    )
    payable_by_currency = {
        row["account__currency"]: -(row["total"] or 0)
        for row in entries.filter(account__kind=AccountKind.DRIVER_PAYABLE)
        .values("account__currency")
        .annotate(total=Sum("amount_minor"))
        .order_by()
    }
    currencies = sorted(set(accounts.values_list("currency", flat=True)) | set(payable_by_currency))
    one = currency or (currencies[0] if len(currencies) == 1 else None)
    return {
        "transactions": transactions.count(),
        "unbalanced": unbalanced,
        "mismatched_currency": mismatched,
        "accounts": accounts.count(),
        "payable_total": payable_by_currency.get(one, 0) if one else None,
        "currency": one,
        "payable_by_currency": payable_by_currency,
        "ledger_sum": entries.aggregate(total=Sum("amount_minor"))["total"] or 0,
    }
