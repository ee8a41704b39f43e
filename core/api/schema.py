"""OpenAPI pieces shared by every API module."""

from drf_spectacular.utils import OpenApiParameter

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="A unique key per logical request (e.g. a UUID); a retry with the same key and "
    "body gets the first response.",
)
