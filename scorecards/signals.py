"""Signals other domains hear from the scorecards, inside the writing transaction.

`delivery_outcome_recorded(sender=DeliveryOutcome, outcome=DeliveryOutcome)`: a delivery's
outcome (on time, late with or without an excuse, failed) was stored and the driver's scorecard
brought up to date; sent once per order. `delivery_outcome_excused(sender=DeliveryOutcome,
outcome=...)`: a dispatcher excused a late delivery afterwards (the scorecard is updated).
Receivers run in the same transaction, so what they write commits or rolls back with it.
"""

from django.dispatch import Signal

delivery_outcome_recorded = Signal()
delivery_outcome_excused = Signal()
