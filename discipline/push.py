"""What the driver's socket sends when a discipline decision about them is made or changes."""

import json

from rest_framework.renderers import JSONRenderer

from discipline import selectors
from discipline.api.serializers import DriverDisciplineDecisionSerializer
from fleet.models import Driver


def decision_for_driver(decision_id, driver_id) -> dict | None:
    """The decision as GET /api/v1/driver/decisions/{id} shows it; None when it is not theirs."""
    driver = Driver.objects.filter(id=driver_id).first()
    decision = None if driver is None else selectors.decisions_of(driver).filter(id=decision_id).first()
    if decision is None:
        return None
    return json.loads(JSONRenderer().render(DriverDisciplineDecisionSerializer(decision).data))
