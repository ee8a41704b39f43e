"""Reads of settlement: a driver's earnings, balance and statements, a client's invoice."""

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet, Sum
from django.template.loader import render_to_string

from fleet.models import Driver
from payouts import pricing
from payouts.models import Account, AccountKind, Earning, LedgerEntry


def earnings_of(driver: Driver) -> QuerySet[Earning]:
    return Earning.objects.filter(driver=driver).select_related("order").order_by("-created_at")


@dataclass
class Document:
    """A statement or an invoice: lines over [start, end) with the balance before and after."""

    title: str
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    opening_minor: int = 0
    lines: list[dict] = field(default_factory=list)

    @property
    def closing_minor(self) -> int:
        return self.opening_minor + sum(line["amount_minor"] for line in self.lines)

    def as_dict(self) -> dict:
        return {
            "title": self.title,
            "currency": self.currency,
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "opening_minor": self.opening_minor,
            "closing_minor": self.closing_minor,
            "lines": self.lines,
        }

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["posted_at", "kind", "reference", "description", "amount_minor", "currency"])
        writer.writerow(["", "opening", "", "Balance at the start", self.opening_minor, self.currency])
        for line in self.lines:
            writer.writerow(
                [
                    line["posted_at"],
                    line["kind"],
                    line["reference"],
                    line["description"],
                    line["amount_minor"],
                    self.currency,
                ]
            )
        writer.writerow(["", "closing", "", "Balance at the end", self.closing_minor, self.currency])
        return out.getvalue()

    def as_html(self) -> str:
        return render_to_string(
            "payouts/document.html",
            {
                "doc": self,
                "opening": pricing.money(self.opening_minor, self.currency),
                "closing": pricing.money(self.closing_minor, self.currency),
                "rows": [
                    {**line, "money": pricing.money(line["amount_minor"], self.currency)}
                    for line in self.lines
                ],
            },
        )


def _document(title: str, account: Account | None, currency: str, start, end, *, sign: int) -> Document:
    """The account's entries in [start, end), signed so that what is owed to the reader (a
    driver) or by them (a client) counts up."""
    doc = Document(title=title, currency=currency, period_start=start, period_end=end)
    if account is None:
        return doc
    entries = LedgerEntry.objects.filter(account=account).select_related("transaction", "transaction__order")
    if start is not None:
        before = entries.filter(transaction__posted_at__lt=start).aggregate(total=Sum("amount_minor"))[
            "total"
        ]
        doc.opening_minor = sign * (before or 0)
        entries = entries.filter(transaction__posted_at__gte=start)
    if end is not None:
        entries = entries.filter(transaction__posted_at__lt=end)
    for entry in entries.order_by("transaction__posted_at", "id"):
        posted = entry.transaction
        doc.lines.append(
            {
                "posted_at": posted.posted_at.isoformat(),
                "kind": posted.kind,
                "reference": posted.order.external_ref if posted.order else "",
                "description": posted.description,
                "amount_minor": sign * entry.amount_minor,
            }
        )
    return doc


def driver_statement(driver: Driver, *, start, end) -> Document:
    currency = driver.organisation.currency
    account = Account.objects.filter(
        kind=AccountKind.DRIVER_PAYABLE, driver=driver, currency=currency
    ).first()
    return _document(f"Statement for {driver.name}", account, currency, start, end, sign=-1)


def client_invoice(organisation, *, client=None, start, end) -> Document:
    """What a client (None: the organisation's own orders) was charged over the period."""
    currency = organisation.currency
    accounts = Account.objects.filter(organisation=organisation, currency=currency)
    if client is not None:
        account = accounts.filter(kind=AccountKind.CLIENT_RECEIVABLE, client=client).first()
    else:
        account = accounts.filter(kind=AccountKind.ORG_RECEIVABLE).first()
    name = client.name if client is not None else organisation.name
    return _document(f"Invoice for {name}", account, currency, start, end, sign=1)
