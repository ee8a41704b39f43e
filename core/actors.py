"""Who or what made a change: a user, a driver, an API key or a system rule.

Every state change and every automated decision carries an Actor, so the audit log can say
who did it and a driver can see that a rule (not a person) made a decision about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models


class ActorType(models.TextChoices):
    USER = "user", "User"
    DRIVER = "driver", "Driver"
    API_KEY = "api_key", "API key"
    SYSTEM = "system", "System rule"


@dataclass(frozen=True)
class Actor:
    type: ActorType
    user: Any = None  # the settings.AUTH_USER_MODEL instance
    api_key: Any = None  # identity.models.ApiKey
    label: str = ""

    @classmethod
    def system(cls, rule: str) -> Actor:
        return cls(type=ActorType.SYSTEM, label=rule)

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        actor_type = ActorType.DRIVER if getattr(user, "is_driver", False) else ActorType.USER
        return cls(type=actor_type, user=user, label=user.get_username())

    @classmethod
    def for_api_key(cls, api_key: Any) -> Actor:
        return cls(type=ActorType.API_KEY, api_key=api_key, label=api_key.name)

    @classmethod
    def from_request(cls, request: Any) -> Actor:
        """The actor behind a DRF request: its API key if it used one, else its user."""
        api_key = getattr(request.user, "api_key", None)  # identity's API-key principal
        if api_key is not None:
            return cls.for_api_key(api_key)
        return cls.for_user(request.user)

    def as_fields(self) -> dict[str, Any]:
        """The values for a model that mixes in ActorFields."""
        return {
            "actor_type": self.type,
            "actor_user": self.user,
            "actor_api_key": self.api_key,
            "actor_label": self.label[:120],
        }

    def as_dict(self) -> dict[str, Any]:
        return {"type": str(self.type), "label": self.label}
