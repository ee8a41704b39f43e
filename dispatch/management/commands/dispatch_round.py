"""`manage.py dispatch_round --org SLUG`: run one dispatch round now and print its report.

For a dispatcher or an operator to see what the loop would do and why: the offers made, each
with the engine's reasons, and the orders left open with theirs.
"""

from django.core.management.base import BaseCommand, CommandError

from core.actors import Actor
from dispatch.services.rounds import run_round
from identity.models import Organisation


class Command(BaseCommand):
    help = "Run one dispatch round for an organisation and print the offers made and the orders left open."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="the organisation's slug")

    def handle(self, *args, **opts):
        organisation = Organisation.objects.filter(slug=opts["org"]).first()
        if organisation is None:
            raise CommandError(f"--org: no organisation with the slug {opts['org']!r}")
        report = run_round(organisation=organisation, actor=Actor.system("dispatch-round-command"))
        for line in report.lines():
            self.stdout.write(line)
