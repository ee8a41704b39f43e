"""Discipline through the HTTP APIs: the driver sees the rules' decisions about them and appeals
them; dispatchers and admins work the review queue (lift or confirm with a reason); and the
whole path from three late deliveries to a lifted suspension, end to end."""

import io
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from core.models import DomainEvent
from discipline.models import DecisionStatus, DisciplineDecision, DisciplineReview
from dispatch.models import Offer, OfferStatus
from dispatch.services.rounds import run_round
from fleet.models import Driver, DriverStatus, DriverStatusChange
from identity.models import Role
from identity.services import create_api_key, issue_device_token
from scorecards.models import DeliveryOutcome
from tests.api.conftest import client_for, device_client, error_of, session_client
from tests.conftest import make_active_driver, make_user, order_payload, post
from tests.discipline.factories import late, review_for, strict, warning_for

REVIEWS = "/api/v1/discipline/reviews"


def courier(org, username="courier", phone="+358401000801"):
    user = make_user(org, Role.DRIVER, username)
    driver = make_active_driver(
        org, name=f"{username} Rider", phone=phone, plate=f"{username[:3].upper()}-9", user=user
    )
    return driver, device_client(issue_device_token(user=user, name="Phone"))


def png() -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 30, 200)).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "signature.png"
    return buffer


def suspended(org, driver) -> DisciplineDecision:
    strict(org)
    for _ in range(3):
        late(org, driver)
    return DisciplineDecision.objects.get(driver=driver, action="SUSPEND")


# --- the driver's decisions and appeals ---------------------------------------------------------


def test_the_driver_sees_the_decision_with_what_it_counted_and_appeals_it_once(org):
    driver, app = courier(org)
    decision = suspended(org, driver)
    listed = app.get("/api/v1/driver/decisions")
    assert listed.status_code == 200
    (shown,) = listed.json()
    assert shown["id"] == str(decision.id)
    assert (shown["rule"], shown["rule_version"], shown["action"], shown["status"]) == (
        "late_streak",
        decision.rule_set.version,
        "SUSPEND",
        "IN_FORCE",
    )
    assert shown["explanation"] == decision.explanation and shown["can_appeal"] is True
    assert len(shown["inputs"]["counted"]) == 3 and shown["inputs"]["left_out"] == []
    assert shown["record"]["to_status"] == "SUSPENDED" and shown["record"]["decided_by"] == "automated rule"
    assert shown["record"]["reason"] == decision.explanation
    url = f"/api/v1/driver/decisions/{decision.id}/appeal"
    for body, field in (({"text": "  "}, "text"), ({"text": "x" * 2001}, "text"), ({}, "text")):
        refused = post(app, url, body)
        assert refused.status_code == 400 and field in error_of(refused)["fields"]
    assert not DisciplineReview.objects.exists()
    appealed = post(app, url, {"text": "The restaurant kept me waiting each time."})
    assert appealed.status_code == 201, appealed.content
    body = appealed.json()
    assert body["status"] == "IN_REVIEW" and body["can_appeal"] is False
    assert [(r["kind"], r["status"], r["appeal_text"]) for r in body["reviews"]] == [
        ("APPEAL", "OPEN", "The restaurant kept me waiting each time.")
    ]
    again = post(app, url, {"text": "Again."})
    assert again.status_code == 409
    assert "already being reviewed" in error_of(again)["message"]
    assert DisciplineReview.objects.count() == 1
    event = DomainEvent.objects.get(event_type="discipline.appealed")
    assert event.actor_user == driver.user and event.reason.startswith("The restaurant")


def test_another_drivers_decision_is_404_and_nothing_is_written(org):
    _me, app = courier(org)
    other = make_active_driver(org, name="Other", phone="+358401000899", plate="OTH-1")
    decision = warning_for(other)
    assert app.get(f"/api/v1/driver/decisions/{decision.id}").status_code == 404
    response = post(app, f"/api/v1/driver/decisions/{decision.id}/appeal", {"text": "Not mine."})
    assert response.status_code == 404
    error_of(response)
    assert not DisciplineReview.objects.exists()
    assert app.get("/api/v1/driver/decisions").json() == []


# --- the review queue -------------------------------------------------------------------------


@pytest.fixture
def appealed(org):
    driver, app = courier(org)
    decision = suspended(org, driver)
    assert (
        post(app, f"/api/v1/driver/decisions/{decision.id}/appeal", {"text": "Traffic."}).status_code == 201
    )
    return driver, app, decision, decision.reviews.get()


def test_a_dispatcher_lifts_an_appealed_suspension_and_the_driver_is_reinstated_with_the_reason(
    org, dispatcher, appealed
):
    driver, app, decision, review = appealed
    client = session_client(dispatcher)
    queue = client.get(REVIEWS, {"status": "OPEN"})
    assert queue.status_code == 200
    (row,) = queue.json()["results"]
    assert row["id"] == str(review.id) and row["appeal_text"] == "Traffic."
    assert row["decision"]["driver"] == {"id": str(driver.id), "name": driver.name, "status": "SUSPENDED"}
    assert row["decision"]["explanation"] == decision.explanation
    refused = post(client, f"{REVIEWS}/{review.id}/lift", {"reason": ""})
    assert refused.status_code == 400 and "reason" in error_of(refused)["fields"]
    lifted = post(client, f"{REVIEWS}/{review.id}/lift", {"reason": "The roadworks were not on the map."})
    assert lifted.status_code == 200, lifted.content
    assert (lifted.json()["status"], lifted.json()["outcome"], lifted.json()["resolved_by"]) == (
        "RESOLVED",
        "LIFTED",
        "dispatcher",
    )
    assert Driver.objects.get(id=driver.id).status == DriverStatus.ACTIVE
    back = DriverStatusChange.objects.filter(driver=driver).order_by("-id").first()
    assert (back.from_status, back.to_status, back.actor_user) == ("SUSPENDED", "ACTIVE", dispatcher)
    assert back.reason == "Your suspension was lifted after a review: The roadworks were not on the map."
    shown = app.get(f"/api/v1/driver/decisions/{decision.id}").json()
    assert (
        shown["status"] == "LIFTED" and shown["reviews"][0]["reason"] == "The roadworks were not on the map."
    )
    assert shown["ended_at"] is not None
    # Decided once: a second decision either way is a 409 that changes nothing.
    for verb in ("lift", "confirm"):
        again = post(client, f"{REVIEWS}/{review.id}/{verb}", {"reason": "Twice."})
        assert again.status_code == 409, verb
    assert DomainEvent.objects.filter(event_type="discipline.review_resolved").count() == 1
    assert post(app, f"/api/v1/driver/decisions/{decision.id}/appeal", {"text": "More."}).status_code == 409


def test_confirming_keeps_the_suspension_and_tells_the_driver_why(org, org_admin, appealed):
    driver, app, decision, review = appealed
    client = session_client(org_admin)
    confirmed = post(client, f"{REVIEWS}/{review.id}/confirm", {"reason": "Three late without cause."})
    assert confirmed.status_code == 200 and confirmed.json()["outcome"] == "CONFIRMED"
    assert Driver.objects.get(id=driver.id).status == DriverStatus.SUSPENDED
    record = DriverStatusChange.objects.filter(driver=driver).order_by("-id").first()
    assert (record.from_status, record.to_status) == ("SUSPENDED", "SUSPENDED")
    assert record.reason.endswith("and confirmed it: Three late without cause.")
    assert app.get(f"/api/v1/driver/decisions/{decision.id}").json()["status"] == "CONFIRMED"


def test_the_queue_is_for_people_with_the_scope_not_keys_clients_or_drivers(org, appealed):
    from identity.services import create_client

    _driver, _app, _decision, review = appealed
    key = client_for(create_api_key(organisation=org, name="all-scopes"))
    assert key.get(REVIEWS).status_code == 200  # a key may read the queue
    refused = post(key, f"{REVIEWS}/{review.id}/lift", {"reason": "By a key."})
    assert refused.status_code == 403 and "person" in error_of(refused)["message"]
    shop = create_client(organisation=org, slug="shop", name="Shop")
    client_user = session_client(make_user(org, Role.CLIENT_USER, "shop-user", client=shop))
    assert client_user.get(REVIEWS).status_code == 403
    assert session_client(review.decision.driver.user).get(REVIEWS).status_code == 403
    reader = client_for(create_api_key(organisation=org, name="reader", scopes=["orders:read"]))
    assert reader.get(REVIEWS).status_code == 403
    assert DisciplineReview.objects.get(id=review.id).status == "OPEN"


def test_a_rule_asking_for_a_person_lands_in_the_same_queue(org, dispatcher):
    driver = make_active_driver(org)
    review = review_for(driver)
    client = session_client(dispatcher)
    (row,) = client.get(REVIEWS).json()["results"]
    assert (row["id"], row["kind"], row["decision"]["action"]) == (str(review.id), "RULE", "HUMAN_REVIEW")
    lifted = post(
        client, f"{REVIEWS}/{review.id}/lift", {"reason": "The ratings were from one angry customer."}
    )
    assert lifted.status_code == 200
    record = DriverStatusChange.objects.filter(driver=driver).order_by("-id").first()
    assert "lifted it: The ratings were from one angry customer." in record.reason
    assert Driver.objects.get(id=driver.id).status == DriverStatus.ACTIVE


def test_the_admin_decides_a_review_through_the_service(org, staff_client, appealed):
    driver, _app, decision, review = appealed
    url = reverse("admin:discipline_disciplinereview_override_status", args=[review.id])
    assert staff_client.get(url).status_code == 200
    refused = staff_client.post(url, {"to_status": "lift", "reason": ""})
    assert refused.status_code == 200 and DisciplineReview.objects.get(id=review.id).status == "OPEN"
    done = staff_client.post(url, {"to_status": "lift", "reason": "Checked the GPS trace."})
    assert done.status_code == 302
    assert Driver.objects.get(id=driver.id).status == DriverStatus.ACTIVE
    decision.refresh_from_db()
    assert decision.status == DecisionStatus.LIFTED
    change = reverse("admin:discipline_disciplinereview_change", args=[review.id])
    assert staff_client.get(change).status_code == 200


# --- end to end ---------------------------------------------------------------------------------


def test_three_consecutive_late_deliveries_suspend_then_appeal_lifts_through_the_api(
    org, org_admin, dispatcher
):
    """An OMS places orders, rounds offer them, the driver's app takes each one late; the third
    suspends them with the explanation they read; they appeal, a dispatcher lifts it, and they
    are ACTIVE and get offers again."""
    oms = client_for(create_api_key(organisation=org, name="oms"))
    admin, desk = session_client(org_admin), session_client(dispatcher)
    changed = admin.patch(
        "/api/v1/discipline-rules", {"rules": {"late_streak": {"warn_first": False}}}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["rules"]["late_streak"]["warn_first"] is False
    driver, app = courier(org)
    start = timezone.now().replace(microsecond=0) + timedelta(hours=1)

    def at(moment):
        return time_machine.travel(moment, tick=False)

    def place_order(ref, slot):
        window = {
            "start": (slot + timedelta(minutes=5)).isoformat(),
            "end": (slot + timedelta(minutes=35)).isoformat(),
        }
        drop = {
            "start": (slot + timedelta(minutes=10)).isoformat(),
            "end": (slot + timedelta(minutes=40)).isoformat(),
        }
        body = order_payload(ref)
        body["pickup"]["window"], body["dropoff"]["window"] = window, drop
        created = post(oms, "/api/v1/orders", body)
        assert created.status_code == 201, created.content
        return created.json()["id"]

    def be_there(slot):
        ping = {"lat": 60.1690, "lon": 24.9410, "accuracy_m": 5, "recorded_at": slot.isoformat()}
        assert post(app, "/api/v1/driver/pings", ping).status_code == 200

    def pending_offer_for(order_id):
        run_round(organisation=org)
        offers = [o for o in app.get("/api/v1/driver/offers").json() if o["status"] == "PENDING"]
        assert [o["orders"][0]["id"] for o in offers] == [order_id]
        return offers[0]["id"]

    with at(start):
        assert post(app, "/api/v1/driver/online", {}).status_code == 200
    for n in range(3):
        slot = start + timedelta(hours=2 * n)
        with at(slot):
            be_there(slot)
            order_id = place_order(f"LATE-{n}", slot)
            assert (
                post(app, f"/api/v1/driver/offers/{pending_offer_for(order_id)}/accept", {}).status_code
                == 200
            )
            for step in ("start_pickup", "arrive_pickup", "pick_up"):
                assert post(app, f"/api/v1/driver/orders/{order_id}/{step}", {}).status_code == 200, step
        finished = slot + timedelta(minutes=58)  # 18 minutes after the drop-off window closed
        with at(finished):
            assert post(app, f"/api/v1/driver/orders/{order_id}/arrive_dropoff", {}).status_code == 200
            delivered = app.post(
                f"/api/v1/driver/orders/{order_id}/deliver",
                {"signature": png(), "lat": "60.1655", "lon": "24.9380", "captured_at": finished.isoformat()},
                format="multipart",
                HTTP_IDEMPOTENCY_KEY=f"deliver-{n}",
            )
            assert delivered.status_code == 200, delivered.content
    outcomes = DeliveryOutcome.objects.filter(driver=driver)
    assert [(o.outcome, o.excused_cause, o.late_seconds) for o in outcomes] == [("LATE", "", 18 * 60)] * 3

    # Suspended, and the driver reads why.
    assert app.get("/api/v1/driver/me").json()["status"] == "SUSPENDED"
    (decision,) = app.get("/api/v1/driver/decisions").json()
    assert decision["action"] == "SUSPEND" and decision["rule_version"] == changed.json()["version"]
    assert decision["explanation"].startswith(
        "You are suspended for 24 hours because your last 3 deliveries were late"
    )
    assert (
        "order LATE-0 (18 minutes late); order LATE-1 (18 minutes late); order LATE-2 (18 minutes late)"
        in (decision["explanation"])
    )
    after = start + timedelta(hours=6)
    with at(after):
        refused = post(app, "/api/v1/driver/online", {})
        assert refused.status_code == 400 and "is_online" in error_of(refused)["fields"]
        waiting = place_order("WAITING", after)
        run_round(organisation=org)
        assert not Offer.objects.filter(driver=driver, status=OfferStatus.PENDING).exists()

        # The driver appeals; a dispatcher finds it in the queue and lifts it.
        appeal = post(
            app, f"/api/v1/driver/decisions/{decision['id']}/appeal", {"text": "Road closed every time."}
        )
        assert appeal.status_code == 201
        (review,) = desk.get(REVIEWS, {"status": "OPEN"}).json()["results"]
        assert (
            review["decision"]["id"] == decision["id"] and review["appeal_text"] == "Road closed every time."
        )
        lifted = post(
            desk, f"{REVIEWS}/{review['id']}/lift", {"reason": "The bridge was closed; not your fault."}
        )
        assert lifted.status_code == 200

        # ACTIVE again: online, and the next round offers them work.
        me = app.get("/api/v1/driver/me").json()
        assert me["status"] == "ACTIVE"
        assert app.get(f"/api/v1/driver/decisions/{decision['id']}").json()["status"] == "LIFTED"
        assert post(app, "/api/v1/driver/online", {}).status_code == 200
        be_there(after)
        assert pending_offer_for(waiting)


def test_an_excused_late_delivery_breaks_nothing_and_is_not_counted_through_the_api(org):
    from tests.discipline.factories import excused_late

    driver, app = courier(org)
    strict(org)
    late(org, driver)
    excused = excused_late(org, driver)
    late(org, driver)
    assert app.get("/api/v1/driver/me").json()["status"] == "ACTIVE"
    assert app.get("/api/v1/driver/decisions").json() == []
    late(org, driver)
    (decision,) = app.get("/api/v1/driver/decisions").json()
    assert decision["action"] == "SUSPEND"
    assert [item["order"] for item in decision["inputs"]["left_out"]] == [excused.external_ref]
    assert excused.external_ref not in [item["order"] for item in decision["inputs"]["counted"]]
    assert "left out because the lateness was not yours" in decision["explanation"]


def test_the_admin_publishes_rules_as_a_new_version_through_the_service(org, staff_client):
    import json

    from discipline.models import RuleSet

    url = reverse("admin:discipline_ruleset_add")
    bad = {"late": {"metric": "acceptance_rate", "threshold": 120, "over_last": 5, "action": "WARN"}}
    refused = staff_client.post(url, {"organisation": org.id, "rules": json.dumps(bad)})
    assert refused.status_code == 200
    assert "rules.late.threshold" in refused.content.decode()
    assert not RuleSet.objects.exists()
    good = {"late": {"metric": "consecutive_late", "threshold": 4, "action": "WARN"}}
    assert staff_client.post(url, {"organisation": org.id, "rules": json.dumps(good)}).status_code == 302
    assert list(RuleSet.objects.values_list("version", flat=True)) == [2, 1]  # 1: the defaults it replaced
    newest = RuleSet.objects.get(version=2)
    assert newest.rules["late"]["threshold"] == 4 and newest.actor_user.username == "staff"
    change = reverse("admin:discipline_ruleset_change", args=[newest.id])
    assert staff_client.get(change).status_code == 200
    assert staff_client.post(change, {"organisation": org.id, "rules": "{}"}).status_code == 403
