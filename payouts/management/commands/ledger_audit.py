"""`manage.py ledger_audit [--json] [--currency EUR] [--org SLUG]`: check the ledger.

Exits non-zero when a transaction does not balance (or an entry is in another currency than
its account), so it can gate a deploy or a cron job.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from identity.models import Organisation
from payouts.audit import audit


class Command(BaseCommand):
    help = "Check that every ledger transaction balances; print the figures (--json for machines)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--currency", help="only this currency (ISO 4217)")
        parser.add_argument("--org", help="only this organisation (slug)")

    def handle(self, *args, **opts):
        organisation_id = None
        if opts["org"]:
            organisation = Organisation.objects.filter(slug=opts["org"]).first()
            if organisation is None:
                raise CommandError(f"--org: no organisation with the slug {opts['org']!r}")
            organisation_id = organisation.id
        report = audit(currency=opts["currency"], organisation_id=organisation_id)
        if opts["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
        else:
            self.stdout.write(
                f"{report['transactions']} transactions in {report['accounts']} accounts; "
                f"{len(report['unbalanced'])} unbalanced, {len(report['mismatched_currency'])} in the wrong currency; "
                f"owed to drivers: {report['payable_by_currency']}"
            )
        if report["unbalanced"] or report["mismatched_currency"]:
            raise SystemExit(1)
