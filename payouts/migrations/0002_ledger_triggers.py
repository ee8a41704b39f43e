"""Database-level protection of the ledger.

PostgreSQL: ledger rows cannot be updated or deleted; an entry's currency must be its
account's and its transaction's; and, at commit (a deferred constraint trigger), every
transaction's entries sum to zero. SQLite: no updates, and the currency check (its DELETE is
left to the ORM guard, since the test runner empties tables with DELETE).
"""

from django.db import migrations

POSTGRES = """
CREATE OR REPLACE FUNCTION payouts_ledger_append_only() RETURNS trigger AS $$
BEGIN
    -- The one exception: wiping a whole organisation (the demo's reset) sets this for its
    -- own transaction (payouts.services.ledger.purge_organisation_ledger).
    IF TG_OP = 'DELETE' AND current_setting('fleetroot.ledger_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'ledger rows are append-only (% on %): post a correcting entry', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER payouts_ledgerentry_append_only BEFORE UPDATE OR DELETE ON payouts_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION payouts_ledger_append_only();
CREATE TRIGGER payouts_ledgertransaction_append_only BEFORE UPDATE OR DELETE ON payouts_ledgertransaction
    FOR EACH ROW EXECUTE FUNCTION payouts_ledger_append_only();

CREATE OR REPLACE FUNCTION payouts_entry_currency() RETURNS trigger AS $$
BEGIN
    IF NEW.currency <> (SELECT currency FROM payouts_account WHERE id = NEW.account_id)
       OR NEW.currency <> (SELECT currency FROM payouts_ledgertransaction WHERE id = NEW.transaction_id) THEN
        RAISE EXCEPTION 'ledger entry currency % does not match its account or transaction', NEW.currency;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER payouts_ledgerentry_currency BEFORE INSERT ON payouts_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION payouts_entry_currency();

CREATE OR REPLACE FUNCTION payouts_transaction_balances() RETURNS trigger AS $$
DECLARE total bigint;
BEGIN
    SELECT COALESCE(SUM(amount_minor), 0) INTO total FROM payouts_ledgerentry WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance (sum %)', NEW.transaction_id, total;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER payouts_ledgerentry_balanced AFTER INSERT ON payouts_ledgerentry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION payouts_transaction_balances();
"""

POSTGRES_DROP = """
DROP TRIGGER IF EXISTS payouts_ledgerentry_balanced ON payouts_ledgerentry;
DROP TRIGGER IF EXISTS payouts_ledgerentry_currency ON payouts_ledgerentry;
DROP TRIGGER IF EXISTS payouts_ledgertransaction_append_only ON payouts_ledgertransaction;
DROP TRIGGER IF EXISTS payouts_ledgerentry_append_only ON payouts_ledgerentry;
DROP FUNCTION IF EXISTS payouts_transaction_balances();
DROP FUNCTION IF EXISTS payouts_entry_currency();
DROP FUNCTION IF EXISTS payouts_ledger_append_only();
"""

SQLITE = [
    """CREATE TRIGGER payouts_ledgerentry_no_update BEFORE UPDATE ON payouts_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only: post a correcting entry'); END""",
    """CREATE TRIGGER payouts_ledgertransaction_no_update BEFORE UPDATE ON payouts_ledgertransaction
       BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only: post a correcting entry'); END""",
    """CREATE TRIGGER payouts_ledgerentry_currency BEFORE INSERT ON payouts_ledgerentry
       WHEN NEW.currency <> (SELECT currency FROM payouts_account WHERE id = NEW.account_id)
         OR NEW.currency <> (SELECT currency FROM payouts_ledgertransaction WHERE id = NEW.transaction_id)
       BEGIN SELECT RAISE(ABORT, 'ledger entry currency does not match its account or transaction'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS payouts_ledgerentry_no_update",
    "DROP TRIGGER IF EXISTS payouts_ledgertransaction_no_update",
    "DROP TRIGGER IF EXISTS payouts_ledgerentry_currency",
]


def _run(schema_editor, postgres: str, sqlite: list[str]) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(postgres, None)  # no params: its '%' are PL/pgSQL's
    elif vendor == "sqlite":
        for statement in sqlite:
            schema_editor.execute(statement)


def create(apps, schema_editor):
    _run(schema_editor, POSTGRES, SQLITE)


def drop(apps, schema_editor):
    _run(schema_editor, POSTGRES_DROP, SQLITE_DROP)


class Migration(migrations.Migration):
    dependencies = [("payouts", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
