"""The ledger: balanced, append-only, once per key, in the accounts' currency; a property
test posts random sequences and checks it stays balanced with balances = sum of entries."""

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from identity.models import Organisation
from identity.services import create_client
from payouts.audit import audit
from payouts.models import AccountKind, AppendOnly, LedgerEntry, LedgerTransaction, TransactionKind
from payouts.services.ledger import (
    account_for,
    balance_minor,
    org_account,
    post_transaction,
    reverse_transaction,
)


@pytest.fixture
def accounts(org):
    clients = [create_client(organisation=org, slug=f"c{i}", name=f"Client {i}") for i in range(2)]
    plain = [
        org_account(org.id, kind, "EUR")
        for kind in (
            AccountKind.PLATFORM,
            AccountKind.FEES,
            AccountKind.PAYOUT_CLEARING,
            AccountKind.ORG_RECEIVABLE,
        )
    ]
    receivables = [
        account_for(
            organisation_id=org.id, kind=AccountKind.CLIENT_RECEIVABLE, currency="EUR", client_id=c.id
        )
        for c in clients
    ]
    return plain + receivables


def post(org, postings, key="k1", currency="EUR"):
    return post_transaction(
        organisation_id=org.id,
        kind=TransactionKind.ADJUSTMENT,
        key=key,
        currency=currency,
        description="test",
        postings=postings,
    )


@pytest.mark.parametrize(
    "amounts, field",
    [
        ((100, -99), "entries"),  # does not balance
        ((100,), "entries"),  # one side only
        ((100.0, -100.0), "entries[0].amount_minor"),  # not whole minor units
        (("100", "-100"), "entries[0].amount_minor"),
        ((True, -1), "entries[0].amount_minor"),
        ((0, 0), "entries[0].amount_minor"),
    ],
)
def test_bad_postings_are_refused_and_nothing_is_written(org, accounts, amounts, field):
    with pytest.raises(ValidationError) as caught:
        post(org, list(zip(accounts, amounts, strict=False)))
    assert field in caught.value.message_dict
    assert not LedgerTransaction.objects.exists() and not LedgerEntry.objects.exists()


def test_a_currency_other_than_the_accounts_is_refused(org, accounts):
    usd = org_account(org.id, AccountKind.PLATFORM, "USD")
    with pytest.raises(ValidationError) as caught:
        post(org, [(accounts[0], 100), (usd, -100)])
    assert "entries[1].currency" in caught.value.message_dict
    with pytest.raises(ValidationError, match="ISO 4217"):
        org_account(org.id, AccountKind.PLATFORM, "eur")


def test_another_organisations_account_is_refused(org, other_org, accounts):
    theirs = org_account(other_org.id, AccountKind.PLATFORM, "EUR")
    with pytest.raises(ValidationError) as caught:
        post(org, [(accounts[0], 100), (theirs, -100)])
    assert "entries[1].account" in caught.value.message_dict


def test_a_key_posts_once(org, accounts):
    first = post(org, [(accounts[0], 100), (accounts[1], -100)])
    again = post(org, [(accounts[0], 100), (accounts[1], -100)])
    assert again.id == first.id
    assert LedgerEntry.objects.count() == 2
    assert balance_minor(accounts[0]) == 100


def test_entries_cannot_be_changed_or_deleted_through_the_orm(org, accounts):
    posted = post(org, [(accounts[0], 100), (accounts[1], -100)])
    entry = posted.entries.first()
    entry.amount_minor = 1
    for attempt in (entry.save, entry.delete, posted.delete, posted.save):
        with pytest.raises(AppendOnly):
            attempt()
    with pytest.raises(AppendOnly):
        LedgerEntry.objects.filter(id=entry.id).update(amount_minor=5)
    with pytest.raises(AppendOnly):
        LedgerEntry.objects.all().delete()
    reversal = reverse_transaction(
        posted, kind=TransactionKind.ADJUSTMENT, key="undo", description="correction"
    )
    assert reversal.reverses_id == posted.id
    assert balance_minor(accounts[0]) == balance_minor(accounts[1]) == 0
    assert LedgerEntry.objects.count() == 4


def test_the_database_refuses_updates_and_foreign_currencies(org, accounts):
    posted = post(org, [(accounts[0], 100), (accounts[1], -100)])
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE payouts_ledgerentry SET amount_minor = 1")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE payouts_ledgertransaction SET description = 'rewritten'")
    usd = LedgerTransaction(organisation=org, kind="adjustment", key="usd", currency="USD", description="x")
    usd.save()
    with pytest.raises(DatabaseError, match="currency"), transaction.atomic():
        LedgerEntry.objects.bulk_create(
            [LedgerEntry(transaction=usd, account=accounts[0], amount_minor=5, currency="USD")]
        )
    assert sorted(posted.entries.values_list("amount_minor", flat=True)) == [-100, 100]


@pytest.mark.skipif(settings.DATABASE_IS_SPATIALITE, reason="the DELETE trigger is PostgreSQL's")
def test_postgresql_refuses_deletes(org, accounts):
    post(org, [(accounts[0], 100), (accounts[1], -100)])
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM payouts_ledgerentry")
    assert LedgerEntry.objects.count() == 2


@pytest.mark.skipif(settings.DATABASE_IS_SPATIALITE, reason="the commit-time balance check is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_postgresql_refuses_to_commit_an_unbalanced_transaction():
    org = Organisation.objects.create(slug="tx", name="Tx", currency="EUR")
    platform = org_account(org.id, AccountKind.PLATFORM, "EUR")
    fees = org_account(org.id, AccountKind.FEES, "EUR")
    with pytest.raises(DatabaseError, match="does not balance"), transaction.atomic():
        around = LedgerTransaction(
            organisation=org, kind="adjustment", key="around", currency="EUR", description="x"
        )
        around.save()
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(transaction=around, account=platform, amount_minor=100, currency="EUR"),
                LedgerEntry(transaction=around, account=fees, amount_minor=-99, currency="EUR"),
            ]
        )
    assert not LedgerTransaction.objects.filter(key="around").exists()
    assert audit()["unbalanced"] == []


amount = st.integers(min_value=-(10**9), max_value=10**9).filter(bool)
legs = st.lists(st.tuples(st.integers(min_value=0, max_value=5), amount), min_size=1, max_size=5)


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(st.tuples(legs, st.booleans()), max_size=12))
def test_any_sequence_of_postings_keeps_the_ledger_balanced(org, accounts, sequence):
    """Balanced postings are accepted, unbalanced ones refused whole; afterwards every
    transaction sums to zero and each account's balance is the sum of what was posted to it."""
    with transaction.atomic():
        expected = [0] * len(accounts)
        accepted = 0
        for index, (parts, balance_it) in enumerate(sequence):
            postings = [(accounts[i], value) for i, value in parts]
            total = sum(value for _i, value in parts)
            if balance_it and total:
                postings.append((accounts[(parts[0][0] + 1) % len(accounts)], -total))
            balanced = sum(value for _a, value in postings) == 0 and len(postings) >= 2
            if balanced:
                post(org, postings, key=f"p{index}")
                accepted += 1
                for account, value in postings:
                    expected[accounts.index(account)] += value
            else:
                with pytest.raises(ValidationError):
                    post(org, postings, key=f"p{index}")
        assert [balance_minor(account) for account in accounts] == expected
        report = audit()
        assert report["transactions"] == accepted
        assert report["unbalanced"] == [] and report["mismatched_currency"] == []
        assert report["ledger_sum"] == 0 and sum(expected) == 0
        transaction.set_rollback(True)
