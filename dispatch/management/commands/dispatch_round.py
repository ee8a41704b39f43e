"""`manage.py dispatch_round --org SLUG`: run one dispatch round now and print its report.

For a dispatcher or an operator to see what the loop would do and why: the offers made, each
with the engine's reasons, and the orders left open with theirs.
"""

from core.actors import Actor
from dispatch.management.organisation_command import OrganisationCommand
from dispatch.services.rounds import run_round


class Command(OrganisationCommand):
    help = "Run one dispatch round for an organisation and print the offers made and the orders left open."

    def handle(self, *args, **opts):
        organisation = self.organisation(opts)
        report = run_round(organisation=organisation, actor=Actor.system("dispatch-round-command"))
        for line in report.lines():
            self.stdout.write(line)
