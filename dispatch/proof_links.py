"""Signed, expiring links to proof-of-delivery images, for the client (API and the
`order.delivered` webhook): whoever holds the link sees that one image until it expires."""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from dispatch.models import ProofOfDelivery

SALT = "fleetroot.proof-image-link"
PROOF_IMAGES = ("photo", "signature")


def signed_image_url(proof: ProofOfDelivery, kind: str) -> str:
    token = signing.TimestampSigner(salt=SALT).sign(f"{proof.pk}:{kind}")
    path = reverse("proof-image", args=[proof.pk, kind])
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}{path}?token={token}"


def token_opens(token: str, *, proof_id: int, kind: str) -> bool:
    """Whether the token was signed by us for this image and has not expired."""
    try:
        value = signing.TimestampSigner(salt=SALT).unsign(token, max_age=settings.POD_LINK_TTL_SECONDS)
    except signing.BadSignature:  # also SignatureExpired
        return False
    return value == f"{proof_id}:{kind}"


def proof_payload(proof: ProofOfDelivery) -> dict:
    """The proof as the client sees it: where, when, who signed, and links to its images."""
    return {
        "captured_at": proof.captured_at.isoformat(),
        "location": {"lat": proof.location.y, "lon": proof.location.x},
        "accuracy_m": proof.accuracy_m,
        "recipient_name": proof.recipient_name,
        "images": {kind: signed_image_url(proof, kind) for kind in PROOF_IMAGES if getattr(proof, kind)},
        "links_expire_at": (timezone.now() + timedelta(seconds=settings.POD_LINK_TTL_SECONDS)).isoformat(),
    }
