"""`manage.py plan_hub_run --org SLUG --hub NAME`: plan the hub's open orders as one multi-stop
run of its online drivers and print it (nothing is assigned).

For a dispatcher to see how the hub's parcels would go out now: each driver's drop-offs in order
with their ETAs, when they are back, and what fits on no vehicle in time or capacity.
"""

from django.core.management.base import CommandError
from django.utils import timezone

from dispatch.management.organisation_command import OrganisationCommand
from dispatch.selectors import hub_run
from fleet.models import Hub


class Command(OrganisationCommand):
    help = "Plan a hub's open orders as a multi-stop run of its online drivers and print it."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--hub", required=True, help="the hub's name")

    def handle(self, *args, **opts):
        organisation = self.organisation(opts)
        hub = Hub.objects.filter(organisation=organisation, name=opts["hub"]).first()
        if hub is None:
            raise CommandError(f"--hub: no hub named {opts['hub']!r} in {organisation.slug}")
        for line in hub_run(hub, now=timezone.now()).lines():
            self.stdout.write(line)
