"""Proof-of-delivery images are served to those who may see them, never from MEDIA_ROOT openly."""

import io
from datetime import UTC, datetime

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image

from core.actors import Actor
from core.geo import make_point
from dispatch.models import ProofOfDelivery
from dispatch.services.orders import create_order, deliver_order, transition_order
from tests.conftest import make_active_driver, make_user, order_payload
from tests.dispatch.factories import order_input

SYSTEM = Actor.system("test")


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (30, 20), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def proof(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    order = create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload()))
    driver = make_active_driver(org)
    for action in ("assign", "start_pickup", "arrive_pickup", "pick_up", "arrive_dropoff"):
        transition_order(
            order_id=order.id,
            organisation=org,
            action=action,
            actor=SYSTEM,
            driver=driver if action == "assign" else None,
        )
    deliver_order(
        order_id=order.id,
        organisation=org,
        driver=driver,
        actor=SYSTEM,
        location=make_point(lat=60.1655, lon=24.938),
        captured_at=datetime.now(UTC),
        photo=ContentFile(png_bytes(), name="door.png"),
    )
    return ProofOfDelivery.objects.get(order=order)


def photo_url(proof):
    return reverse("proof-image", args=[proof.pk, "photo"])


def test_staff_get_the_image_inline_with_its_type(staff_client, proof):
    response = staff_client.get(photo_url(proof))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("inline")
    body = b"".join(response.streaming_content)
    assert body == proof.photo.open("rb").read() and body.startswith(b"\x89PNG")


def test_the_admin_links_the_image_through_the_view(staff_client, proof):
    page = staff_client.get(reverse("admin:dispatch_proofofdelivery_change", args=[proof.pk]))
    html = page.content.decode()
    assert photo_url(proof) in html and "/media/" not in html


def test_the_orders_dispatcher_gets_it_another_organisation_does_not(client, proof, org, other_org):
    client.force_login(make_user(org, "dispatcher", "own-dispatcher"))
    assert client.get(photo_url(proof)).status_code == 200
    client.force_login(make_user(other_org, "org_admin", "other-admin"))
    assert client.get(photo_url(proof)).status_code == 404
    assert client.get(reverse("proof-image", args=[proof.pk, "signature"])).status_code == 404


def test_anonymous_is_sent_to_sign_in_and_media_is_not_served(client, proof):
    response = client.get(photo_url(proof))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.get(f"/media/{proof.photo.name}").status_code == 404


def test_a_driver_of_the_organisation_does_not_get_it(client, proof, org):
    client.force_login(make_user(org, "driver", "some-driver"))
    assert client.get(photo_url(proof)).status_code == 404
