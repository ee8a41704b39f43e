"""`manage.py reposition --org SLUG`: run predictive dispatch once now and print what it did.

For an operator to see the forecast at work: the orders expected in the next slot, the idle
drivers, and each suggestion made with the reason its driver reads (or why nothing ran).
"""

from core.actors import Actor
from dispatch.management.organisation_command import OrganisationCommand
from dispatch.services.repositioning import suggest_repositioning


class Command(OrganisationCommand):
    help = "Suggest moves toward forecast demand to an organisation's idle drivers now, and print them."

    def handle(self, *args, **opts):
        organisation = self.organisation(opts)
        report = suggest_repositioning(organisation=organisation, actor=Actor.system("reposition-command"))
        head = f"Repositioning for {report.organisation} at {report.ran_at.isoformat(timespec='seconds')}"
        if report.skipped:
            self.stdout.write(f"{head}: skipped ({report.skipped})")
            return
        self.stdout.write(
            f"{head}: {report.forecast_orders:.1f} orders expected in the next slot, "
            f"{report.idle_drivers} idle drivers, {len(report.suggestions)} suggestions"
        )
        for suggestion in report.suggestions:
            self.stdout.write(
                f"  {suggestion.driver.name} -> {suggestion.target.y:.5f},{suggestion.target.x:.5f} "
                f"({suggestion.distance_m} m): {suggestion.reason}"
            )
