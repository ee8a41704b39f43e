"""In a real browser (Debian's Chromium through Playwright), against the production start:
no text from the data runs as script, every page holds to the Content-Security-Policy, and
the admin's map works with nothing reachable but our own server."""

import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.deploy.server import manage

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
XSS = '<img src=x onerror="window.__xss=1">'
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
    reason="Chromium is not installed (make test installs it; CI fails without it)",
)
SEED = f"""
from core.geo import make_point
from django.contrib.gis.geos import Polygon
from fleet import services
from identity.models import Organisation, Role, User
org = Organisation.objects.create(slug="x", name="XSS Test Org")
User.objects.create_user("disp", password="pw-123456-e2e", organisation=org, role=Role.DISPATCHER)
User.objects.create_superuser("staff", "s@example.com", "pw-123456-e2e")
area = Polygon.from_bbox((24.935, 60.164, 24.953, 60.179)); area.srid = 4326
zone = services.create_zone(organisation=org, name={json.dumps(XSS)}, area=area)
services.create_hub(organisation=org, name={json.dumps("Hub " + XSS)}, address={json.dumps(XSS)},
                    location=make_point(lat=60.1715, lon=24.9415))

# A driver with an order on their route (its drop-off at risk of being late) and another with
# a pending offer, away from the hub, so the map has a route, an offer line and an alert.
from datetime import timedelta
from django.utils import timezone
from core.actors import Actor
from dispatch.models import Stop
from dispatch.services import sla
from dispatch.services.offers import make_offer
from dispatch.services.orders import OrderInput, create_order, transition_order
from tests.conftest import make_active_driver
system = Actor.system("e2e")
now = timezone.now()
def order(ref, lat):
    return create_order(organisation=org, actor=system, data=OrderInput(
        external_ref=ref, recipient_name="R",
        pickup_address="P", pickup_location=make_point(lat=lat, lon=24.950),
        pickup_window_start=now, pickup_window_end=now + timedelta(hours=1),
        dropoff_address="D", dropoff_location=make_point(lat=lat - 0.004, lon=24.938),
        dropoff_window_start=now, dropoff_window_end=now + timedelta(hours=2)))
drivers = []
for n, lat in ((1, 60.1775), (2, 60.1655)):
    d = make_active_driver(org, name="Driver " + {json.dumps(XSS)}, phone=f"+35840100090{{n}}", plate=f"E2E-{{n}}")
    services.set_driver_online(driver_id=d.id, organisation=org, online=True, actor=system)
    services.record_ping(driver=d, ping=services.PingInput(lat=lat, lon=24.951, recorded_at=now))
    drivers.append(d)
late = order({json.dumps(XSS)}, 60.176)
transition_order(order_id=late.id, organisation=org, action="assign", actor=system, driver=drivers[0])
Stop.objects.filter(order=late, kind="dropoff").update(
    window_start=now - timedelta(hours=2), window_end=now - timedelta(hours=1))
sla.watch_slas()
make_offer(organisation=org, driver=drivers[1], orders=[order("OFFERED-1", 60.170)],
           expires_at=now + timedelta(hours=1), actor=system)
print(zone.id)
"""


@pytest.fixture(scope="module")
def site(production):
    zone_id = manage(production.env, "shell", "-c", SEED).stdout.strip().splitlines()[-1]
    return production.base, zone_id


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


class Watched:
    """A page that records CSP violations, script errors and requests leaving our server."""

    def __init__(self, browser, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 800})
        self.page = self.context.new_page()
        self.base = base
        self.problems: list[str] = []
        self.outside: list[str] = []
        own = urlsplit(base).netloc

        def route(request_route):
            url = request_route.request.url
            if urlsplit(url).netloc not in (own, "") and not url.startswith("data:"):
                self.outside.append(url)
                return request_route.abort()
            return request_route.continue_()

        self.context.route("**/*", route)
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.add_init_script(
            "document.addEventListener('securitypolicyviolation',"
            " e => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
        )

    def sign_in(self, path: str, username: str) -> None:
        self.page.goto(f"{self.base}{path}")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", "pw-123456-e2e")
        self.page.click("button[type=submit], input[type=submit]")
        self.page.wait_for_load_state("networkidle")

    def screenshot(self, name: str) -> None:
        folder = Path(os.environ.get("E2E_SHOTS", "var/e2e"))
        folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(folder / f"{name}.png"))


def test_the_live_map_shows_names_as_text_and_keeps_to_its_csp(site, browser):
    base, _zone_id = site
    watched = Watched(browser, base)
    page = watched.page
    watched.sign_in("/accounts/login/?next=/live/", "disp")
    assert page.url.endswith("/live/")
    page.wait_for_selector("#connection.connection--live", timeout=10_000)
    hub = page.locator(".hub-icon").bounding_box()
    page.mouse.move(hub["x"] + 80, hub["y"] + 80)  # inside the zone, off the hub
    page.wait_for_selector(".leaflet-tooltip", timeout=5_000)
    assert XSS in page.locator(".leaflet-tooltip").first.inner_text()
    page.hover(".hub-icon")
    page.wait_for_function("document.querySelectorAll('.leaflet-tooltip').length >= 1")
    tips = " ".join(page.locator(".leaflet-tooltip").all_inner_texts())
    assert "Hub " + XSS in tips
    assert page.evaluate("window.__xss") is None
    assert page.locator(".leaflet-tooltip img").count() == 0
    watched.screenshot("live-map")
    assert watched.problems == [] and watched.outside == []


def test_the_live_map_draws_routes_offers_and_orders_at_risk(site, browser):
    base, _zone_id = site
    watched = Watched(browser, base)
    page = watched.page
    watched.sign_in("/accounts/login/?next=/live/", "disp")
    page.wait_for_selector("#connection.connection--live", timeout=10_000)
    page.wait_for_selector("path.route-line", timeout=10_000)
    assert page.locator("path.route-line").count() == 1  # one driver with a route
    assert page.locator("path.route-stop").count() == 2  # its pickup and drop-off
    assert page.locator("path.offer-line").count() == 1  # the pending offer, dashed
    assert page.locator("path.offer-line").get_attribute("stroke-dasharray") == "3 6"
    assert page.locator("path.at-risk-ring").count() == 1
    # The alert lists the order by its reference, as text.
    assert page.locator("#at-risk li").all_inner_texts() == [XSS + " · Assigned"]
    assert page.locator("#at-risk img").count() == 0
    page.locator("path.route-stop").last.hover(force=True)
    page.wait_for_selector(".leaflet-tooltip", timeout=5_000)
    tip = " ".join(page.locator(".leaflet-tooltip").all_inner_texts())
    assert "drop-off" in tip and "ETA" in tip and "min late (predicted)" in tip
    assert page.evaluate("window.__xss") is None
    watched.screenshot("live-map-routes")
    assert watched.problems == [] and watched.outside == []


def test_every_page_sends_a_strict_csp(site, browser):
    base, _zone_id = site
    watched = Watched(browser, base)
    for path in ("/accounts/login/", "/api/docs/", "/admin/login/"):
        response = watched.page.goto(f"{base}{path}")
        directives = dict(
            part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";")
        )
        assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'"
        assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    watched.page.goto(f"{base}/api/docs/")
    watched.page.wait_for_selector(".swagger-ui .info", timeout=10_000)
    watched.screenshot("api-docs")
    assert watched.problems == [] and watched.outside == []


def test_the_admin_map_draws_offline(site, browser):
    base, zone_id = site
    watched = Watched(browser, base)
    watched.sign_in("/admin/login/", "staff")
    watched.page.goto(f"{base}/admin/fleet/zone/{zone_id}/change/")
    watched.page.wait_for_selector(".dj_map .ol-viewport canvas", timeout=10_000)
    assert watched.page.locator(".dj_map .ol-viewport").count() == 1
    watched.screenshot("admin-zone")
    assert watched.problems == [] and watched.outside == []
