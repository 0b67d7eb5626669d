"""Budget-alert webhooks cannot be aimed at internal hosts, do not follow redirects, and are
signed so a receiver can verify them (Standard Webhooks).

Real processes on loopback: ``multiagent serve`` on the fake Messages API, and HTTPS
receivers in this process (a throwaway CA the servers trust through ``SSL_CERT_FILE``).
Two servers: ``strict`` as deployed (nothing internal allowed), and ``allowing``, whose
operator allows the host name ``localhost`` through ``MULTIAGENT_WEBHOOK_ALLOW_HOSTS`` so a
receiver on loopback can be reached at all.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.store import open_store
from tests.e2e.live_server import LiveServer, start_live_server
from tests.integration.test_cli import assert_one_line_error

pytestmark = pytest.mark.e2e

ADMIN = "webhook-admin-key-0123456789abcdef"
AUTH = {"authorization": f"Bearer {ADMIN}"}
SECRET_BYTES = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()
QUESTION = {"question": "How much can I spend on coffee?"}


# -- an HTTPS receiver on 127.0.0.1 ------------------------------------------------------------


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA (what the servers trust) and a certificate for localhost / 127.0.0.1 it signed."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_path.write_bytes(ca.public_bytes(pem))
    cert_path.write_bytes(cert.public_bytes(pem))
    key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return ca_path, cert_path, key_path


@dataclass
class Receiver:
    """An HTTPS server on 127.0.0.1 that records every request and answers 200 or a redirect."""

    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    redirect_to: str | None = None

    def url(self, path: str = "/hook", host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def wait(self, count: int = 1, timeout: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.requests


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return _tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def receivers(tls: tuple[Path, Path, Path]) -> Iterator[list[Receiver]]:
    """Four receivers; each test resets what it uses."""
    _, cert, key = tls
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    started: list[tuple[Receiver, ThreadingHTTPServer]] = []
    for _ in range(4):
        receiver = Receiver(port=0)

        class Handler(BaseHTTPRequestHandler):
            target = receiver

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                self.target.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in
                                                                          self.headers.items()}, "body": body})
                if self.target.redirect_to:
                    self.send_response(307)
                    self.send_header("location", self.target.redirect_to)
                else:
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        receiver.port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append((receiver, httpd))
    try:
        yield [r for r, _ in started]
    finally:
        for _, httpd in started:
            httpd.shutdown()
            httpd.server_close()


def _server(tmp_path_factory: pytest.TempPathFactory, ca: Path, name: str, **env: str) -> Iterator[LiveServer]:
    server = start_live_server(tmp_path_factory.mktemp(name), fake_model=True, env={
        "MULTIAGENT_ADMIN_KEY": ADMIN, "MULTIAGENT_WEBHOOK_SECRET": SECRET, "SSL_CERT_FILE": str(ca),
        "MULTIAGENT_LOG_LEVEL": "INFO", **env})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, tls: tuple[Path, Path, Path]) -> Iterator[LiveServer]:
    """As deployed: no host allowed to resolve to a non-public address."""
    yield from _server(tmp_path_factory, tls[0], "strict", MULTIAGENT_WEBHOOK_ALLOW_HOSTS="")


@pytest.fixture(scope="module")
def allowing(tmp_path_factory: pytest.TempPathFactory, tls: tuple[Path, Path, Path]) -> Iterator[LiveServer]:
    """The operator seam: ``localhost`` may resolve to loopback (tests only)."""
    yield from _server(tmp_path_factory, tls[0], "allowing", MULTIAGENT_WEBHOOK_ALLOW_HOSTS="localhost")


def _tenant(server: LiveServer, name: str, **fields: Any) -> tuple[str, str]:
    resp = httpx.post(server.url + "/v1/admin/tenants", headers=AUTH, timeout=30, json={
        "name": f"{name}-{uuid.uuid4().hex[:8]}",  # tenant names are unique per store
        "daily_usd": 5, "monthly_usd": 50, "alert_threshold": 0.000001, "rpm": 1000, "tpm": 10_000_000, **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()["tenant_id"], resp.json()["api_key"]


def _cross_the_alert_threshold(server: LiveServer, tenant_id: str, key: str) -> None:
    """One paid call (any cost crosses the tiny threshold); waits for the budget.alert audit event,
    which is written just before the webhook is sent."""
    resp = httpx.post(server.url + "/v1/teams/finance/ask", json=QUESTION, timeout=60,
                      headers={"authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"]["cost_usd"] > 0
    store = open_store(server.env["MULTIAGENT_STORE"])
    try:
        for _ in range(200):
            if any(e.type == "budget.alert" for e in store.list_audit(tenant_id, 100)):
                return
            time.sleep(0.05)
    finally:
        store.close()
    raise AssertionError("no budget.alert audit event")


def _log_has(server: LiveServer, *words: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in server.log_path.read_text(errors="replace").splitlines() if "webhook" in line]
        hits = [line for line in lines if all(w in line for w in words)]
        if hits:
            return hits[-1]
        time.sleep(0.1)
    raise AssertionError(f"no log line with {words}:\n{server.log_tail()}")


# -- written: 422 naming webhook_url -----------------------------------------------------------


def _loopback_names_from_hosts_file() -> list[str]:
    """Names other than localhost that this machine resolves to loopback (e.g. its own host name)."""
    names: list[str] = []
    try:
        for line in Path("/etc/hosts").read_text().splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) > 1 and (parts[0].startswith("127.") or parts[0] == "::1"):
                names += [n for n in parts[1:] if "localhost" not in n and not n.replace(".", "").isdigit()]
    except OSError:
        pass
    return names[:2]


BAD_URLS = [
    "http://hooks.example.com/alert",  # not https
    "https://169.254.169.254/latest/meta-data/",  # the tester's: cloud metadata
    "http://169.254.169.254/latest/meta-data/",
    "https://127.0.0.1:1/", "http://[::1]:1/", "https://[::1]:1/", "https://10.0.0.1/", "https://[fd00::1]/",
    "https://[::ffff:127.0.0.1]/", "https://2130706433/", "https://0x7f.0.0.1/", "https://127.1/",
    "file:///etc/passwd", "gopher://hooks.example.com:70/_POST", "ftp://hooks.example.com/",
    "https://localhost/", "https://localhost:8443/hook", "https://LocalHost./", "https://a.localhost/",
    "https://user:pass@hooks.example.com/", "https://hooks.example.com\\@127.0.0.1/", "https:///nohost",
    "not a url", 42, ["https://hooks.example.com/"],
]


@pytest.mark.parametrize("url", BAD_URLS + _loopback_names_from_hosts_file(), ids=str)
def test_a_bad_webhook_url_is_a_422_naming_it_and_changes_nothing(strict: LiveServer, url: Any) -> None:
    if isinstance(url, str) and "/" not in url and " " not in url:
        url = f"https://{url}:8443/hook"  # a name from /etc/hosts that resolves to loopback
    tenant_id, _ = _tenant(strict, "victim", webhook_url="https://hooks.example.com/ok")
    # when an admin (or someone holding the admin key) points the tenant's webhook elsewhere
    resp = httpx.patch(f"{strict.url}/v1/admin/tenants/{tenant_id}", json={"webhook_url": url}, headers=AUTH,
                       timeout=30)
    # then it is the validation problem naming webhook_url, and the stored URL is unchanged
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["type"] == "/problems/validation-error"
    assert [e["loc"] for e in body["errors"]] == [["body", "webhook_url"]], body
    shown = httpx.get(f"{strict.url}/v1/admin/tenants/{tenant_id}", headers=AUTH, timeout=30).json()
    assert shown["webhook_url"] == "https://hooks.example.com/ok"
    # and a tenant cannot be created with it either
    created = httpx.post(strict.url + "/v1/admin/tenants", json={"name": "other", "webhook_url": url},
                         headers=AUTH, timeout=30)
    assert created.status_code == 422 and created.json()["errors"][0]["loc"] == ["body", "webhook_url"]


def test_the_cli_refuses_in_one_line_and_accepts_a_public_name(strict: LiveServer) -> None:
    tenant_id, _ = _tenant(strict, "cli")
    for url in ("http://169.254.169.254/", "https://localhost/", "https://[::1]:1/"):
        assert_one_line_error(strict.cli("tenants", "update", tenant_id, "--webhook-url", url, check=False),
                              "webhook_url")
    ok = httpx.patch(f"{strict.url}/v1/admin/tenants/{tenant_id}", headers=AUTH, timeout=30,
                     json={"webhook_url": "https://hooks.example.com/alerts?token=abc"})
    assert ok.status_code == 200 and ok.json()["webhook_url"] == "https://hooks.example.com/alerts?token=abc"
    cleared = httpx.patch(f"{strict.url}/v1/admin/tenants/{tenant_id}", headers=AUTH, timeout=30,
                          json={"webhook_url": ""})
    assert cleared.status_code == 200 and not cleared.json()["webhook_url"]


# -- sent: checked again, pinned, no redirects -------------------------------------------------


def test_a_stale_record_aimed_at_loopback_is_refused_when_sent(strict: LiveServer, receivers: list[Receiver]) -> None:
    target = receivers[0]
    target.requests.clear()
    target.redirect_to = None
    store = open_store(strict.env["MULTIAGENT_STORE"])
    tenants = []
    try:
        # given records written before the check existed (straight into the store): a name that resolves
        # to loopback and an IP literal, both pointing at a live HTTPS receiver on 127.0.0.1
        stale = [("stale-name", target.url(host="localhost")), ("stale-ip", target.url(host="127.0.0.1"))]
        stale += [(f"stale-{n}", target.url(host=n)) for n in _loopback_names_from_hosts_file()]
        for name, url in stale:
            tenant_id, key = _tenant(strict, name)
            store.update_tenant(tenant_id, {"webhook_url": url})
            tenants.append((tenant_id, key))
    finally:
        store.close()
    # when each tenant's budget alert fires
    for tenant_id, key in tenants:
        _cross_the_alert_threshold(strict, tenant_id, key)
    # then the sender refuses both, and the receiver hears nothing
    assert "must not name localhost" in _log_has(strict, "refused", "https://localhost:")
    assert "not an IP address" in _log_has(strict, "refused", "https://127.0.0.1:")
    for name in _loopback_names_from_hosts_file():  # names the resolver itself finds on loopback
        assert "resolves to a non-public address (127." in _log_has(strict, "refused", f"https://{name}:")
    time.sleep(1)
    assert target.requests == []


def test_a_redirect_is_not_followed(allowing: LiveServer, receivers: list[Receiver]) -> None:
    first, second = receivers[1], receivers[2]
    for r in (first, second):
        r.requests.clear()
    second.redirect_to = None
    first.redirect_to = second.url("/stolen")  # what an attacker's receiver would answer
    # given a tenant whose receiver (allowed by the operator seam) answers 307 to another server
    tenant_id, key = _tenant(allowing, "redirected")
    resp = httpx.patch(f"{allowing.url}/v1/admin/tenants/{tenant_id}", json={"webhook_url": first.url()},
                       headers=AUTH, timeout=30)
    assert resp.status_code == 200, resp.text
    # when its alert fires
    _cross_the_alert_threshold(allowing, tenant_id, key)
    # then the first receiver gets the alert, the redirect is logged, and the second server gets nothing
    # (one alert per window crossed: the day's and the month's)
    assert len(first.wait(2)) == 2 and {r["path"] for r in first.requests} == {"/hook"}
    assert "307" in _log_has(allowing, "answered")
    time.sleep(1.5)
    assert second.requests == []


def test_a_delivered_alert_verifies_with_the_standard_webhooks_algorithm(allowing: LiveServer,
                                                                         receivers: list[Receiver]) -> None:
    receiver = receivers[3]
    receiver.requests.clear()
    receiver.redirect_to = None
    tenant_id, key = _tenant(allowing, "signed", webhook_url=receiver.url("/alerts"))
    _cross_the_alert_threshold(allowing, tenant_id, key)
    requests = receiver.wait(2)  # the day's and the month's alert
    assert len(requests) == 2
    assert {json.loads(r["body"])["window"] for r in requests} == {"day", "month"}
    for request in requests:
        _verify(request["headers"], request["body"])


def _verify(headers: dict[str, str], body: bytes) -> None:
    # Standard Webhooks, written out here (not shared/webhooks.py's code): HMAC-SHA256 keyed with the
    # base64 part of the whsec_ secret, over "{webhook-id}.{webhook-timestamp}.{raw body}", base64, "v1,"
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    expected = base64.b64encode(hmac.new(base64.b64decode(SECRET.removeprefix("whsec_")),
                                         f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()
    signatures = [s.split(",", 1) for s in headers["webhook-signature"].split()]
    assert ["v1", expected] in signatures
    assert msg_id and abs(int(timestamp) - time.time()) < 300
    assert headers["content-type"].startswith("application/json")
    alert = json.loads(body)
    assert alert["type"] == "budget.alert" and alert["window"] in ("day", "month") and alert["threshold"] == 0.000001
    # a tampered body or a wrong secret does not verify
    forged = base64.b64encode(hmac.new(base64.b64decode(SECRET.removeprefix("whsec_")),
                                       f"{msg_id}.{timestamp}.".encode() + body + b" ", hashlib.sha256).digest())
    assert ["v1", forged.decode()] not in signatures
    assert ["v1", base64.b64encode(hmac.new(os.urandom(32), f"{msg_id}.{timestamp}.".encode() + body,
                                            hashlib.sha256).digest()).decode()] not in signatures


def test_the_sender_checks_every_address_and_the_secret_format() -> None:
    from shared import webhooks

    for address in ("127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                    "fd00::1", "fe80::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::", "240.0.0.1", "::ffff:10.0.0.1",
                    "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2001:db8::1"):
        assert not webhooks.public_address(address), address
    for address in ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"):
        assert webhooks.public_address(address), address
    assert webhooks.refused_addresses(["93.184.215.14", "127.0.0.1"]) == ["127.0.0.1"]  # one bad address: refused
    assert webhooks.parse_secrets(SECRET) == [SECRET_BYTES]
    for bad in ("", "secret", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError):
            webhooks.parse_secrets(bad)
    assert len(webhooks.parse_secrets(f"{SECRET} {webhooks.new_secret()}")) == 2  # rotation: both sign


async def test_a_name_that_resolves_to_loopback_at_send_time_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                                      receivers: list[Receiver]) -> None:
    """DNS rebinding: the name was public (or did not resolve) when written, and answers
    127.0.0.1 when the alert is sent. The sender's own resolver refuses it; nothing connects."""
    import socket

    from shared import webhooks

    target = receivers[0]
    target.requests.clear()
    real = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("rebind.example", "mixed.example"):
            answers = real("127.0.0.1", port, *args, **kwargs)
            if host == "mixed.example":  # one public address, one internal: still refused
                answers = real("93.184.215.14", port, *args, **kwargs) + answers
            return answers
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setenv(webhooks.ALLOW_HOSTS_ENV, "")
    for name in ("rebind.example", "mixed.example"):
        with pytest.raises(webhooks.WebhookRefused, match=r"non-public address \(127\.0\.0\.1\)"):
            await webhooks.deliver(f"https://{name}:{target.port}/hook", {"type": "test"}, [SECRET_BYTES])
    # and an IP literal never reaches the resolver: refused before any connection
    with pytest.raises(webhooks.WebhookRefused):
        await webhooks.deliver(f"https://127.0.0.1:{target.port}/hook", {"type": "test"}, [SECRET_BYTES])
    time.sleep(0.5)
    assert target.requests == []


async def test_without_a_signing_secret_nothing_is_sent(monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    from shared import webhooks

    monkeypatch.delenv("MULTIAGENT_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("MULTIAGENT_SECRETS", "env")
    monkeypatch.setattr(webhooks, "_secret_stores", {})

    async def never(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("an unsigned alert was sent")

    monkeypatch.setattr(webhooks, "deliver", never)
    with caplog.at_level("ERROR", logger="multiagent.webhooks"):
        await webhooks.send_alert("https://hooks.example.com/alerts", {"window": "day"})
    assert "no signing secret" in caplog.text and "MULTIAGENT_WEBHOOK_SECRET" in caplog.text
    monkeypatch.setenv("MULTIAGENT_WEBHOOK_SECRET", "whsec_tooshort")
    monkeypatch.setattr(webhooks, "_secret_stores", {})
    caplog.clear()
    with caplog.at_level("ERROR", logger="multiagent.webhooks"):
        await webhooks.send_alert("https://hooks.example.com/alerts", {"window": "day"})
    assert "not sent" in caplog.text and "whsec_tooshort" not in caplog.text
