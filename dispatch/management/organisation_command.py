"""A management command run for one organisation, named by `--org SLUG`."""

from django.core.management.base import BaseCommand, CommandError

from identity.models import Organisation


class OrganisationCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="the organisation's slug")

    def organisation(self, opts) -> Organisation:
        organisation = Organisation.objects.filter(slug=opts["org"]).first()
        if organisation is None:
            raise CommandError(f"--org: no organisation with the slug {opts['org']!r}")
        return organisation
