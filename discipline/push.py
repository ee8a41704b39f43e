"""What the driver's socket sends when a decision about them is made or changes."""

import json

from rest_framework.renderers import JSONRenderer

from discipline import selectors
from discipline.api.serializers import DriverRecordSerializer
from fleet.models import Driver


def decision_for_driver(record_id, driver_id) -> dict | None:
    """The row of the driver's decision record as GET /api/v1/driver/decisions/{id} shows it;
    None when it is not theirs."""
    driver = Driver.objects.filter(id=driver_id).first()
    row = None if driver is None else selectors.decision_record(driver).filter(id=record_id).first()
    return None if row is None else json.loads(JSONRenderer().render(DriverRecordSerializer(row).data))
