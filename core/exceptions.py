"""Domain errors that the API turns into clear HTTP answers."""


class InvalidTransition(Exception):
    """A state change the state machine refuses from the current state (HTTP 409)."""

    def __init__(self, message: str, *, current_status: str, action: str) -> None:
        super().__init__(message)
        self.message = message
        self.current_status = current_status
        self.action = action


class ConcurrentChange(Exception):
    """Another transaction changed the same record first; the caller may retry (HTTP 409)."""
