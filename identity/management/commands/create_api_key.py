"""Issue an API key for an organisation and print it once: only its hash is stored."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from identity.models import ALL_SCOPES, Client, Organisation
from identity.services import create_api_key


def _scopes(value: str) -> list[str]:
    return [scope.strip() for scope in value.split(",") if scope.strip()]


class Command(BaseCommand):
    help = "Create an API key for an organisation and print it once (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, metavar="SLUG", help="The organisation's slug.")
        parser.add_argument("--name", default="oms", help="A label for the key (default: oms).")
        parser.add_argument(
            "--scopes",
            type=_scopes,
            default=None,
            help=f"Comma-separated scopes (default: all): {', '.join(ALL_SCOPES)}.",
        )
        parser.add_argument(
            "--rate",
            type=int,
            default=None,
            metavar="PER_MINUTE",
            help="Requests per minute allowed for this key (default: API_KEY_DEFAULT_RATE_PER_MINUTE).",
        )
        parser.add_argument(
            "--client",
            default=None,
            metavar="CLIENT_SLUG",
            help="Limit the key to one client of the organisation: it then sees only that client's orders.",
        )

    def handle(
        self,
        *args,
        org: str,
        name: str,
        scopes: list[str] | None,
        rate: int | None,
        client: str | None,
        **options,
    ):
        organisation = Organisation.objects.filter(slug=org).first()
        if organisation is None:
            raise CommandError(f"No organisation with the slug '{org}'.")
        limited_to = None
        if client is not None:
            limited_to = Client.objects.filter(organisation=organisation, slug=client).first()
            if limited_to is None:
                raise CommandError(f"No client with the slug '{client}' in {organisation.slug}.")
        if scopes is not None and not scopes:
            raise CommandError("--scopes names no scope.")
        if rate is not None and rate < 1:
            raise CommandError("--rate must be at least 1 request per minute.")
        try:
            issued = create_api_key(
                organisation=organisation,
                name=name,
                scopes=scopes,
                rate_limit_per_minute=rate,
                client=limited_to,
            )
        except ValidationError as exc:
            messages = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
            raise CommandError(messages) from exc
        key = issued.api_key
        self.stderr.write(
            f"API key '{key.name}' for {organisation.slug}: scopes {', '.join(key.scopes)}; "
            f"{key.rate_limit_per_minute} requests/minute. It is shown once; store it now."
        )
        self.stdout.write(issued.plaintext)
