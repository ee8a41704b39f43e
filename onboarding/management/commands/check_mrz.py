"""Validate an MRZ typed as text: `manage.py check_mrz LINE1 LINE2 [LINE3] --json`."""

from django.core.management.base import BaseCommand, CommandError

from onboarding.management.commands._output import emit
from onboarding.verification.mrz import parse_mrz


class Command(BaseCommand):
    help = "Parse and validate a machine-readable zone given as 2 or 3 lines of text (no OCR repair)."

    def add_arguments(self, parser):
        parser.add_argument(
            "lines", nargs="+", help="the MRZ lines, each quoted (or all in one, a line a row)"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, lines, json, **options):
        result = parse_mrz([line for argument in lines for line in argument.split()])
        if result.doc_type is None:
            raise CommandError(result.reasons[0])
        emit(self, result.as_dict(), as_json=json)
