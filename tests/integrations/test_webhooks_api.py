"""The webhooks API: admins subscribe (the secret comes back once), edit, rotate, delete;
targets on loopback, private or link-local addresses are refused with a 400 field error
(SSRF) unless LEADCRM_WEBHOOK_ALLOW_PRIVATE; signatures follow the Standard Webhooks
specification, checked against an independent implementation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from integrations import signing, targets
from integrations.models import Webhook
from leadcrm.models import AuditEntry
from tests.factories import UserFactory, WebhookFactory

pytestmark = pytest.mark.django_db

HOOKS = "/api/v1/webhooks/"
PUBLIC_URL = "https://93.184.215.14/leadcrm"  # an IP literal: no DNS needed


@pytest.fixture
def admin_client(auth_client):
    return auth_client(UserFactory(role="admin"))


def test_an_admin_subscribes_and_gets_the_secret_once(admin_client):
    response = admin_client.post(
        HOOKS, {"url": PUBLIC_URL, "events": ["lead.created", "email.clicked"], "description": "CRM sync"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(base64.b64decode(body["secret"][6:])) == 24
    assert body["events"] == ["lead.created", "email.clicked"] and body["active"] is True
    assert "secret" not in admin_client.get(f"{HOOKS}{body['id']}/").json()
    assert "secret" not in admin_client.get(HOOKS).json()[0]
    entry = AuditEntry.objects.get(action="webhook.create")
    assert body["secret"] not in str(entry.changes) and entry.changes["url"] == [None, PUBLIC_URL]


@pytest.mark.parametrize("role", ["marketing", "manager", "sdr"])
def test_only_admins_see_or_manage_webhooks(role, auth_client):
    hook = WebhookFactory()
    client = auth_client(UserFactory(role=role))
    assert client.get(HOOKS).status_code == 403
    assert client.post(HOOKS, {"url": PUBLIC_URL, "events": ["lead.created"]}).status_code == 403
    assert client.get(f"{HOOKS}{hook.pk}/deliveries/").status_code == 403
    assert client.patch(f"{HOOKS}{hook.pk}/", {"active": False}).status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.10/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://2130706433/hook",  # 127.0.0.1 as one number
    ],
)
def test_private_targets_are_refused_with_a_field_error(admin_client, url):
    response = admin_client.post(HOOKS, {"url": url, "events": ["lead.created"]})
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["url"]
    assert not Webhook.objects.exists()


def test_private_targets_are_allowed_by_the_setting(admin_client, settings):
    settings.LEADCRM_WEBHOOK_ALLOW_PRIVATE = True
    response = admin_client.post(HOOKS, {"url": "http://127.0.0.1:9/hook", "events": ["lead.created"]})
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://93.184.215.14/", "events": ["lead.created"]}, "url"),
        ({"url": "https://user:pw@93.184.215.14/", "events": ["lead.created"]}, "url"),
        ({"url": "https://no-such-host.invalid/", "events": ["lead.created"]}, "url"),
        ({"url": PUBLIC_URL, "events": ["lead.nothing"]}, "events"),
        ({"url": PUBLIC_URL, "events": []}, "events"),
        ({"url": PUBLIC_URL}, "events"),
    ],
)
def test_bad_subscriptions_answer_400(admin_client, body, field):
    response = admin_client.post(HOOKS, body)
    assert response.status_code == 400 and field in response.json()


def test_an_edit_to_a_private_target_is_refused_too(admin_client):
    hook = admin_client.post(HOOKS, {"url": PUBLIC_URL, "events": ["lead.created"]}).json()
    response = admin_client.patch(f"{HOOKS}{hook['id']}/", {"url": "http://10.1.2.3/"})
    assert response.status_code == 400 and "url" in response.json()
    assert Webhook.objects.get(pk=hook["id"]).url == PUBLIC_URL
    ok = admin_client.patch(f"{HOOKS}{hook['id']}/", {"events": ["lead.assigned"], "description": "x"})
    assert ok.status_code == 200 and ok.json()["events"] == ["lead.assigned"]
    assert AuditEntry.objects.filter(action="webhook.update").count() == 1


def test_rotation_returns_a_new_secret_and_keeps_the_old_one_for_a_while(admin_client):
    created = admin_client.post(HOOKS, {"url": PUBLIC_URL, "events": ["lead.created"]}).json()
    rotated = admin_client.post(f"{HOOKS}{created['id']}/rotate-secret/").json()
    assert rotated["secret"] != created["secret"] and rotated["previous_secret_expires_at"]
    hook = Webhook.objects.get(pk=created["id"])
    from integrations import services

    assert services.webhook_secrets(hook) == [rotated["secret"], created["secret"]]
    assert AuditEntry.objects.filter(action="webhook.rotate_secret").exists()


def test_delete(admin_client):
    hook = WebhookFactory()
    assert admin_client.delete(f"{HOOKS}{hook.pk}/").status_code == 204
    assert not Webhook.objects.exists()
    assert AuditEntry.objects.filter(action="webhook.delete").exists()


# --- SSRF rules over open-ended input ------------------------------------------------------


def _independent_public(ip) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    nets = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12"]
    nets += ["192.168.0.0/16", "224.0.0.0/3", "::1/128", "::/128", "fc00::/7", "fe80::/10", "ff00::/8"]
    if any(ip in ipaddress.ip_network(n) for n in nets if ipaddress.ip_network(n).version == ip.version):
        return False
    return ip.is_global


@given(st.ip_addresses())
@settings(max_examples=400)
def test_an_ip_target_is_allowed_only_when_public(ip):
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    problem = targets.refusal(f"https://{host}/hook")
    if _independent_public(ip):
        assert problem is None
    else:
        assert problem is not None and "private" in problem


@given(st.sampled_from(["10.0.0.1", "127.0.0.1", "169.254.169.254", "::1", "fd12::1"]), st.text(max_size=30))
@settings(max_examples=100)
def test_a_name_resolving_to_any_private_address_is_refused(private, name):
    def resolver(host, port):
        return [private, "93.184.215.14"]

    label = "".join(c for c in name if c.isalnum() and c.isascii()) or "x"
    assert targets.refusal(f"https://{label}.example.com/", resolve=resolver) is not None


@given(st.text(max_size=200))
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_any_url_text_answers_201_or_a_400_field_error(admin_client, monkeypatch, text):
    monkeypatch.setattr(targets, "_resolve", lambda host, port: ["10.9.8.7"])
    response = admin_client.post(HOOKS, {"url": text, "events": ["lead.created"]})
    assume(response.status_code != 429)
    assert response.status_code == 400 and list(response.json()) == ["url"], (text, response.content)


# --- signatures: an independent implementation of the specification ------------------------


def _spec_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks, written from the specification, not from the code under test."""
    assert secret.startswith("whsec_")
    key = base64.standard_b64decode(secret[len("whsec_") :])
    mac = hmac.HMAC(key, msg=msg_id.encode() + b"." + str(timestamp).encode() + b"." + body, digestmod=hashlib.sha256)
    return "v1," + base64.standard_b64encode(mac.digest()).decode("ascii")


@given(
    st.text(alphabet=st.characters(codec="ascii", exclude_characters=" ,."), min_size=1, max_size=40),
    st.integers(min_value=0, max_value=2**40),
    st.binary(max_size=2000),
)
@settings(max_examples=200)
def test_signatures_match_the_specification(msg_id, timestamp, body):
    secret = signing.new_secret()
    assert signing.sign(secret, msg_id, timestamp, body) == _spec_signature(secret, msg_id, timestamp, body)
    other = signing.new_secret()
    header = signing.headers([secret, other], msg_id, timestamp, body)
    assert header["webhook-id"] == msg_id and header["webhook-timestamp"] == str(timestamp)
    assert header["webhook-signature"].split(" ") == [
        _spec_signature(secret, msg_id, timestamp, body),
        _spec_signature(other, msg_id, timestamp, body),
    ]


def test_the_specifications_example_vector():
    """The example of the Standard Webhooks reference libraries' tests."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id, timestamp = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signing.sign(secret, msg_id, timestamp, body) == expected == _spec_signature(secret, msg_id, timestamp, body)
