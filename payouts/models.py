"""Settlement: a double-entry ledger, earnings rules and price lists, earnings per delivery,
payouts, disputes.

The ledger is our own small model rather than django-hordak: hordak keeps Decimal amounts
through django-money and its balance checks are PostgreSQL-only, while we keep integer minor
units with a currency on every row and run on SpatiaLite too. Entries are append-only: the ORM
refuses updates and deletes, and triggers refuse them in the database (PostgreSQL also checks,
at commit, that every transaction sums to zero and each entry's currency is its account's).
"""

import uuid

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q

from core.models import ActorFields
from dispatch.models import Order
from fleet.models import Driver, Vehicle, Zone
from identity.models import Client, Organisation

currency_code = RegexValidator(r"^[A-Z]{3}$", "ISO 4217 code.")


class AppendOnly(Exception):
    """A ledger row was to be changed or deleted: corrections are new entries."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly(f"{self.model.__name__} rows are append-only; post a correcting entry.")

    def delete(self):
        raise AppendOnly(f"{self.model.__name__} rows are append-only; post a correcting entry.")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly(f"{type(self).__name__} rows are append-only; post a correcting entry.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly(f"{type(self).__name__} rows are append-only; post a correcting entry.")


class AccountKind(models.TextChoices):
    DRIVER_PAYABLE = "driver_payable", "Driver earnings payable"
    PLATFORM = "platform", "Platform (earnings expense, delivery revenue)"
    ORG_RECEIVABLE = "org_receivable", "Organisation receivable"
    CLIENT_RECEIVABLE = "client_receivable", "Client receivable"
    PAYOUT_CLEARING = "payout_clearing", "Payout clearing"
    FEES = "fees", "Fees"


class Account(models.Model):
    """One ledger account in one currency. Balance = sum of its entries (debits positive):
    a driver's payable account is negative by what we owe them."""

    Kind = AccountKind

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="ledger_accounts")
    kind = models.CharField(max_length=20, choices=AccountKind.choices)
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3, validators=[currency_code])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="account_driver_iff_driver_payable",
                condition=Q(kind="driver_payable", driver__isnull=False)
                | (~Q(kind="driver_payable") & Q(driver__isnull=True)),
            ),
            models.CheckConstraint(
                name="account_client_iff_client_receivable",
                condition=Q(kind="client_receivable", client__isnull=False)
                | (~Q(kind="client_receivable") & Q(client__isnull=True)),
            ),
            models.UniqueConstraint(
                fields=["driver", "currency"],
                condition=Q(kind="driver_payable"),
                name="one_payable_per_driver",
            ),
            models.UniqueConstraint(
                fields=["client", "currency"],
                condition=Q(kind="client_receivable"),
                name="one_receivable_per_client",
            ),
            models.UniqueConstraint(
                fields=["organisation", "kind", "currency"],
                condition=~Q(kind__in=["driver_payable", "client_receivable"]),
                name="one_org_account_per_kind",
            ),
        ]

    def __str__(self) -> str:
        owner = self.driver_id or self.client_id or self.organisation_id
        return f"{self.kind} {owner} {self.currency}"


class TransactionKind(models.TextChoices):
    EARNING = "earning", "Delivery earning"
    EARNING_REVERSAL = "earning_reversal", "Earning reversed"
    CLIENT_CHARGE = "client_charge", "Delivery charged to the client"
    CLIENT_CHARGE_REVERSAL = "client_charge_reversal", "Client charge reversed"
    GUARANTEE_TOPUP = "guarantee_topup", "Guaranteed minimum top-up"
    ADJUSTMENT = "adjustment", "Adjustment (dispute or correction)"
    PAYOUT = "payout", "Payout to the driver"
    PAYOUT_FEE = "payout_fee", "Instant payout fee"
    PAYOUT_SETTLED = "payout_settled", "Payout settled by the provider"
    PAYOUT_REVERSAL = "payout_reversal", "Failed payout reversed"


class LedgerTransaction(AppendOnlyModel):
    """A balanced set of entries, posted once: `key` is unique per organisation, so a retried
    posting finds the first instead of posting again."""

    Kind = TransactionKind

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=24, choices=TransactionKind.choices)
    key = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, validators=[currency_code])
    description = models.TextField()
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reverses = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    posted_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["posted_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "key"], name="ledger_transaction_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class LedgerEntry(AppendOnlyModel):
    """One side of a transaction: a signed amount (debit positive, credit negative)."""

    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, validators=[currency_code])

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(name="entry_amount_not_zero", condition=~Q(amount_minor=0))]

    def __str__(self) -> str:
        return f"{self.amount_minor} {self.currency} on {self.account_id}"


class VersionedFields(models.Model):
    """Versions of a tariff, each effective over [effective_from, effective_to)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3, validators=[currency_code])
    effective_from = models.DateTimeField()
    effective_to = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class EarningRule(VersionedFields):
    """What a driver earns per delivery, for an organisation, optionally a zone (of the drop-off)
    and a vehicle type; the most specific rule in effect wins."""

    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    vehicle_type = models.CharField(max_length=16, blank=True, choices=Vehicle.Type.choices)
    base_minor = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    per_km_minor = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    waiting_threshold_s = models.PositiveIntegerField(default=300)
    waiting_per_minute_minor = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    guaranteed_hourly_minor = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    # Surge windows in the organisation's time zone: [{"days": [0-6], "start": "HH:MM",
    # "end": "HH:MM", "percent": 20}] on base + distance + waiting.
    surge = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "zone", "vehicle_type", "effective_from"],
                name="earning_rule_version_unique",
            ),
            models.CheckConstraint(
                name="earning_rule_amounts_non_negative",
                condition=Q(base_minor__gte=0, per_km_minor__gte=0, waiting_per_minute_minor__gte=0)
                & Q(guaranteed_hourly_minor__gte=0),
            ),
            models.CheckConstraint(
                name="earning_rule_period_ordered",
                condition=Q(effective_to__isnull=True) | Q(effective_to__gt=F("effective_from")),
            ),
        ]

    def __str__(self) -> str:
        return f"Earning rule from {self.effective_from:%Y-%m-%d} ({self.vehicle_type or 'any vehicle'})"


class PriceList(VersionedFields):
    """What a client (none: the organisation's own orders) is charged per delivery; the tip
    is passed through to the driver on top."""

    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    base_minor = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    per_km_minor = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])

    class Meta:
        ordering = ["-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "client", "effective_from"],
                name="price_list_version_unique",
            ),
            models.CheckConstraint(
                name="price_list_amounts_non_negative", condition=Q(base_minor__gte=0, per_km_minor__gte=0)
            ),
            models.CheckConstraint(
                name="price_list_period_ordered",
                condition=Q(effective_to__isnull=True) | Q(effective_to__gt=F("effective_from")),
            ),
        ]

    def __str__(self) -> str:
        return f"Price list from {self.effective_from:%Y-%m-%d}"


class Earning(models.Model):
    """A driver's earning for one delivered order, with its breakdown in words and figures.

    At most one live (unreversed) earning per order: the table refuses a second, so a retried
    or concurrent proof of delivery posts nothing twice."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.PROTECT, related_name="earnings")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="earnings")
    rule = models.ForeignKey(EarningRule, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3, validators=[currency_code])
    total_minor = models.BigIntegerField()
    breakdown = models.JSONField(default=dict)
    distance_m = models.PositiveIntegerField()
    distance_source = models.CharField(max_length=32)
    # None when the earning is zero (nothing to post).
    transaction = models.ForeignKey(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    charge = models.ForeignKey(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    charge_breakdown = models.JSONField(default=dict)
    reversal = models.ForeignKey(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reversed_reason = models.TextField(blank=True)
    reversed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"], condition=Q(reversed_at__isnull=True), name="one_live_earning_per_order"
            ),
            models.CheckConstraint(name="earning_total_non_negative", condition=Q(total_minor__gte=0)),
        ]

    def __str__(self) -> str:
        return f"Earning {self.total_minor} {self.currency} for {self.order_id}"


class PayoutCycle(models.Model):
    """One period [start, end) of an organisation: its guarantee top-ups, batch payouts,
    statements and invoices. Closed once (unique), so the daily batch runs once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    closed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "period_start"], name="one_cycle_per_period"),
            models.CheckConstraint(
                name="cycle_period_ordered", condition=Q(period_end__gt=F("period_start"))
            ),
        ]

    def __str__(self) -> str:
        return f"Cycle {self.period_start:%Y-%m-%d}"


class PayoutAccount(models.Model):
    """A driver's account at the payout provider (a Stripe Express account)."""

    driver = models.OneToOneField(Driver, on_delete=models.PROTECT, related_name="payout_account")
    provider = models.CharField(max_length=16)
    external_id = models.CharField(max_length=255)
    payouts_enabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.provider} {self.external_id}"


class PayoutStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    IN_TRANSIT = "IN_TRANSIT", "In transit"
    PAID = "PAID", "Paid"
    FAILED = "FAILED", "Failed (reversed in the ledger)"


class PayoutKind(models.TextChoices):
    BATCH = "batch", "Daily batch"
    INSTANT = "instant", "Instant cash-out"


class Payout(models.Model):
    """Money leaving a driver's payable balance: `amount_minor` is taken from the balance,
    `fee_minor` of it is the instant fee and `net_minor` reaches the driver."""

    Kind = PayoutKind
    Status = PayoutStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.PROTECT, related_name="payouts")
    cycle = models.ForeignKey(PayoutCycle, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=PayoutKind.choices)
    currency = models.CharField(max_length=3, validators=[currency_code])
    amount_minor = models.BigIntegerField()
    fee_minor = models.BigIntegerField(default=0)
    net_minor = models.BigIntegerField()
    provider = models.CharField(max_length=16)
    provider_ref = models.CharField(max_length=255, blank=True)  # the transfer
    provider_payout_ref = models.CharField(max_length=255, blank=True, db_index=True)  # an instant payout
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=12, choices=PayoutStatus.choices, default=PayoutStatus.PENDING)
    failure_reason = models.TextField(blank=True)
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(name="payout_amount_positive", condition=Q(amount_minor__gt=0)),
            models.CheckConstraint(
                name="payout_net_is_amount_less_fee",
                condition=Q(net_minor=F("amount_minor") - F("fee_minor"))
                & Q(fee_minor__gte=0, net_minor__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} payout {self.net_minor} {self.currency} ({self.status})"


class CashOutQuote(models.Model):
    """An instant cash-out as offered to the driver (amount, fee, what they receive), valid
    briefly; confirming it makes the payout, once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    driver = models.ForeignKey(Driver, on_delete=models.PROTECT, related_name="cash_out_quotes")
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    fee_minor = models.BigIntegerField()
    expires_at = models.DateTimeField()
    payout = models.OneToOneField(
        Payout, null=True, blank=True, on_delete=models.PROTECT, related_name="quote"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Quote {self.amount_minor} {self.currency}"


class StripeEvent(models.Model):
    """Each Stripe webhook event handled once: a replay of its id is refused."""

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.event_id


class DisputeKind(models.TextChoices):
    MISSING_TIP = "missing_tip", "Missing tip"
    WRONG_DISTANCE = "wrong_distance", "Wrong distance"
    UNPAID_WAITING = "unpaid_waiting", "Unpaid waiting time"


class DisputeStatus(models.TextChoices):
    AUTO_CORRECTED = "AUTO_CORRECTED", "Corrected automatically"
    NEEDS_REVIEW = "NEEDS_REVIEW", "Waiting for a person"
    CORRECTED = "CORRECTED", "Corrected by a person"
    REJECTED = "REJECTED", "Rejected by a person"


class Dispute(ActorFields):
    """A driver's claim about one earning, the automatic check (inputs and its reason) and,
    if it went to a person, their decision and reason: all shown to the driver."""

    Kind = DisputeKind
    Status = DisputeStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.PROTECT, related_name="disputes")
    earning = models.ForeignKey(Earning, on_delete=models.PROTECT, related_name="disputes")
    kind = models.CharField(max_length=16, choices=DisputeKind.choices)
    message = models.TextField(blank=True, max_length=2000)
    claimed_distance_m = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=DisputeStatus.choices)
    check_inputs = models.JSONField(default=dict)
    check_reason = models.TextField()
    decision_reason = models.TextField(blank=True)
    adjustment = models.ForeignKey(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["earning", "kind"], condition=~Q(status="REJECTED"), name="one_open_dispute_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} dispute ({self.status})"
