"""The SSRF guard: the same rules when a subscription is saved and before every try."""

import socket

import pytest
from django.core.exceptions import ValidationError

from integrations import services
from integrations.models import WebhookDelivery
from integrations.tasks import send_due_webhooks
from integrations.webhooks import delivery as webhook_delivery
from integrations.webhooks.targets import is_public_address
from tests.integrations.conftest import subscribe
from tests.integrations.test_webhook_delivery import emit

# IPv6 forms that embed a private IPv4 address, and the ranges refused outright.
EMBEDDING_PRIVATE_IPV4 = [
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:7f00:1",  # the same, in hex
    "::ffff:169.254.169.254",  # mapped cloud metadata
    "::ffff:0:127.0.0.1",  # IPv4-translated (SIIT)
    "::ffff:0:a9fe:a9fe",  # translated cloud metadata
    "::127.0.0.1",  # IPv4-compatible
    "::10.0.0.1",
    "64:ff9b::7f00:1",  # NAT64 well-known prefix -> 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 -> 169.254.169.254
    "64:ff9b:1::7f00:1",  # NAT64 local use: refused outright
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo of 127.0.0.1
]
REFUSED_OUTRIGHT_THOUGH_PUBLIC_INSIDE = [
    "::8.8.8.8",  # IPv4-compatible
    "64:ff9b:1::808:808",  # NAT64 local use
    "2002:808:808::1",  # 6to4
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo
    "::1:0:0:808:808",  # elsewhere in ::/8, outside global unicast
    "64:ff9b:0:1::808:808",  # beside NAT64's /96
    "5f00::1",  # unassigned
]
OTHER_PRIVATE = [
    "127.0.0.1",
    "10.1.2.3",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 (an address judged, not bound)
    "::1",
    "::",
    "fe80::1%eth0",
]
PUBLIC = ["8.8.8.8", "::ffff:8.8.8.8", "::ffff:0:8.8.8.8", "64:ff9b::808:808", "2606:4700:4700::1111"]


@pytest.mark.parametrize(
    "address", EMBEDDING_PRIVATE_IPV4 + REFUSED_OUTRIGHT_THOUGH_PUBLIC_INSIDE + OTHER_PRIVATE
)
def test_private_addresses_and_ipv6_forms_embedding_ipv4_are_not_public(address):
    assert is_public_address(address) is False


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_public_also_through_mapping_and_nat64(address):
    assert is_public_address(address) is True


@pytest.fixture
def strict_targets(settings):
    """Production's rules: https only, no private addresses."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    settings.WEBHOOK_ALLOW_HTTP = False


REFUSED_URLS = [
    *(
        f"https://[{address}]/hooks"
        for address in EMBEDDING_PRIVATE_IPV4 + REFUSED_OUTRIGHT_THOUGH_PUBLIC_INSIDE
    ),
    "https://[::127.0.0.1]:8443/hooks",
    "https://127.0.0.1/hooks",
    "https://localhost/hooks",
    "https://oms.example:0/hooks",  # port 0
    "https://oms.example:65536/hooks",  # past the last port
    "https://oms.example:99999/hooks",
    "https://user:password@oms.example/hooks",  # userinfo
    "https://user@oms.example/hooks",
    "https://:password@oms.example/hooks",
    "http://oms.example/hooks",  # plain http, not allowed in production
    "ftp://oms.example/hooks",
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", REFUSED_URLS)
def test_refused_targets_are_a_url_field_error_at_subscription_time(org, strict_targets, url):
    with pytest.raises(ValidationError) as refused:
        services.create_webhook_subscription(organisation=org, url=url, event_types=["*"])
    assert list(refused.value.message_dict) == ["url"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["https://oms.example/hooks", "https://oms.example:8443/hooks", "https://[2606:4700::1]/h"]
)
def test_public_https_targets_are_accepted(org, strict_targets, url):
    assert services.create_webhook_subscription(organisation=org, url=url, event_types=["*"]).url == url


@pytest.mark.django_db
def test_http_is_accepted_where_allowed(org, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    services.create_webhook_subscription(organisation=org, url="http://oms.example/hooks", event_types=["*"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://user:pw@127.0.0.1:{port}/hooks", "user name or password"),
        ("http://127.0.0.1:{port}/hooks", "https://"),
        ("https://127.0.0.1:0/hooks", "Port 0"),
        ("https://[::127.0.0.1]:{port}/hooks", "private"),
        ("https://[::ffff:127.0.0.1]:{port}/hooks", "private"),
        ("https://[::ffff:0:127.0.0.1]:{port}/hooks", "private"),
    ],
)
def test_the_same_rules_refuse_an_old_row_at_send_time_without_a_request(org, receiver, settings, url, error):
    """A row saved under looser settings (or before a rule existed) is checked again at every try."""
    subscription = subscribe(org, receiver, ["order.*"])  # saved while the fixture allowed it
    port = receiver.url.split(":")[2].split("/")[0]
    type(subscription).objects.filter(id=subscription.id).update(url=url.format(port=port))
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    settings.WEBHOOK_ALLOW_HTTP = False
    emit(org)
    assert send_due_webhooks() == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert error in delivery.last_error
    assert receiver.requests == []


@pytest.mark.parametrize(
    "resolved", ["::ffff:127.0.0.1", "::ffff:0:127.0.0.1", "64:ff9b::7f00:1", "::127.0.0.1", "2002:7f00:1::1"]
)
def test_a_host_name_resolving_to_an_embedded_private_ipv4_is_refused(monkeypatch, settings, resolved):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    monkeypatch.setattr(
        webhook_delivery.socket,
        "getaddrinfo",
        lambda *args, **kwargs: [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (resolved, 443, 0, 0))],
    )
    outcome = webhook_delivery.send("https://rebind.example/hooks", b"{}", {})
    assert outcome.status_code is None
    assert "private" in outcome.error and resolved in outcome.error
