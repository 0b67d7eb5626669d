"""Budget-alert webhooks: where they may be sent, and how they are sent and signed.

A tenant's ``webhook_url`` is a URL an admin types, so it is treated as untrusted and
checked twice (see ``docs/webhooks.md``):

- **When written** (admin API, CLI, :class:`~shared.tenants.TenantAdmin`):
  :func:`validate_webhook_url` — ``https`` only, no credentials in the URL, a host *name*
  (never an IP literal in any spelling: ``169.254.169.254``, ``[::1]``, ``2130706433``,
  ``0x7f.1``), not ``localhost`` / ``*.localhost``, and a name that does not resolve to a
  non-public address (loopback, private, link-local, unique-local, CGNAT, multicast,
  reserved, unspecified: anything :attr:`ipaddress.IPv4Address.is_global` refuses, IPv4
  embedded in IPv6 included). A refusal is a 422 ``validation-error`` naming
  ``webhook_url`` (one line in the CLI). A name that does not resolve yet is accepted: the
  check that matters is the next one.
- **When sent** (:func:`send_alert`): the same URL checks, then the host is resolved by
  :class:`VettedResolver`, which refuses the request if *any* address is non-public and
  hands aiohttp only the addresses it checked, so the connection goes to a vetted address
  (a DNS answer that changes between the check and the connection cannot redirect it).
  Redirects are not followed, proxies from the environment are not used, the timeout is
  short (``TIMEOUT_S``) and a failure or refusal is only logged: an alert never breaks a call.

Payloads are signed following `Standard Webhooks <https://www.standardwebhooks.com>`_:
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64
HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the per-deployment secret
``webhook-secret`` from the secret store (``MULTIAGENT_SECRETS``; with ``env``, the
variable ``MULTIAGENT_WEBHOOK_SECRET``), written ``whsec_`` + base64 of 24 to 64 random
bytes. Several secrets separated by spaces or commas sign with each (one ``v1,`` signature
per secret, space-separated), for rotation. Without a valid secret no alert is sent.

Operator-only test seam: ``MULTIAGENT_WEBHOOK_ALLOW_HOSTS``, a comma-separated list of host
names (default empty) that may resolve to non-public addresses — for a receiver on an
internal network or a test receiver on loopback. It is read from the process environment
only (never from a tenant record); https and the no-IP-literal rule still apply.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from shared import limits
from shared.secrets.base import SecretUnavailable

if TYPE_CHECKING:
    from aiohttp.abc import ResolveResult

    from shared.secrets import CachedSecrets

log = logging.getLogger("multiagent.webhooks")

WEBHOOK_SECRET = "webhook-secret"  # the secret's name; env backend: MULTIAGENT_WEBHOOK_SECRET
ALLOW_HOSTS_ENV = "MULTIAGENT_WEBHOOK_ALLOW_HOSTS"
SECRET_PREFIX = "whsec_"
MAX_URL_CHARS = 2048
TIMEOUT_S = 5.0  # the whole delivery: resolution, connection, TLS, request and answer
RESOLVE_TIMEOUT_S = 3.0  # the write-time lookup
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NON_PUBLIC_V6 = [ipaddress.IPv6Network(n) for n in ("64:ff9b:1::/48", "2001::/32", "2001:db8::/32", "fec0::/10")]


class WebhookRefused(OSError):
    """The URL or one of its host's addresses may not receive a webhook."""


# -- where a webhook may go ------------------------------------------------------------------


def operator_allowed_hosts(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """``MULTIAGENT_WEBHOOK_ALLOW_HOSTS``: host names allowed to resolve to non-public addresses."""
    raw = (os.environ if environ is None else environ).get(ALLOW_HOSTS_ENV, "")
    return frozenset(h.strip().lower().rstrip(".") for h in raw.split(",") if h.strip())


def public_address(address: str | IPAddress) -> bool:
    """True only for a globally reachable unicast address (IPv4 inside IPv6 checked as IPv4)."""
    try:
        ip = address if not isinstance(address, str) else ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None:
            return public_address(embedded)
        if ip.teredo or any(ip in net for net in _NON_PUBLIC_V6) or ip.is_site_local:
            return False
    return bool(ip.is_global and not (ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local
                                      or ip.is_reserved or ip.is_unspecified))


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)  # 127.1, 2130706433, 0x7f.0.0.1, 0177.0.0.1: what the OS would connect to
        return True
    except (OSError, ValueError):
        pass
    last = host.rstrip(".").rsplit(".", 1)[-1]
    return bool(_NUMERIC_LABEL.match(last))  # a name ending in a number is an IPv4 address to URL parsers


def check_url(url: Any, allow_hosts: Iterable[str] = ()) -> tuple[str, int]:
    """The (host, port) of a webhook URL after the checks that need no DNS; raises
    :class:`WebhookRefused` with a one-line reason."""
    if not isinstance(url, str):
        raise WebhookRefused("must be an https URL string")
    if len(url) > MAX_URL_CHARS:
        raise WebhookRefused(f"must be at most {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 0x20 or c in "\\\x7f" for c in url):
        raise WebhookRefused("must not contain spaces, control characters or backslashes")
    from yarl import URL  # what aiohttp parses the URL with

    try:
        parsed = URL(url)
        host = (parsed.raw_host or "").lower()
        port = parsed.port
    except (ValueError, TypeError, UnicodeError) as exc:
        raise WebhookRefused(f"is not a valid URL ({exc})") from None
    if parsed.scheme.lower() != "https":
        raise WebhookRefused("must be an https:// URL")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise WebhookRefused("must not carry credentials (user:password@)")
    if not host:
        raise WebhookRefused("must name a host")
    if _is_ip_literal(host):
        raise WebhookRefused("must name a host by its DNS name, not an IP address")
    name = host.rstrip(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise WebhookRefused("must name a host by a valid DNS name")
    allowed = name in {h.lower().rstrip(".") for h in allow_hosts}
    if not allowed and (name == "localhost" or name.endswith(".localhost")):
        raise WebhookRefused("must not name localhost")
    return host, port or 443


def refused_addresses(addresses: Iterable[str]) -> list[str]:
    """The addresses among ``addresses`` a webhook may not be sent to."""
    return [a for a in addresses if not public_address(a)]


def _lookup(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def validate_webhook_url(value: Any, loc: limits.Loc, environ: Mapping[str, str] | None = None) -> str:
    """A tenant's ``webhook_url`` as written (admin API, CLI, TenantAdmin); ``""`` turns the
    webhook off. Raises a 422 naming ``loc`` when the URL may not receive webhooks."""
    if value == "":
        return ""
    allow = operator_allowed_hosts(environ)
    try:
        host, port = check_url(value, allow)
    except WebhookRefused as exc:
        raise limits.invalid(loc, str(exc)) from None
    if host.rstrip(".") in allow:
        return str(value)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        addresses = pool.submit(_lookup, host, port).result(timeout=RESOLVE_TIMEOUT_S)
    except (OSError, UnicodeError, concurrent.futures.TimeoutError):
        addresses = []  # not resolvable now: it is checked again, and pinned, when an alert is sent
    finally:
        pool.shutdown(wait=False)
    bad = refused_addresses(addresses)
    if bad:
        raise limits.invalid(loc, f"{host} resolves to a non-public address ({bad[0]}); "
                                  "webhooks go only to public https hosts")
    return str(value)


# -- signing (Standard Webhooks) -------------------------------------------------------------


def parse_secrets(value: str) -> list[bytes]:
    """The HMAC keys of ``whsec_<base64>`` secrets (space- or comma-separated, for rotation);
    raises ValueError naming what is wrong (never the secret)."""
    keys: list[bytes] = []
    for part in re.split(r"[\s,]+", value.strip()):
        if not part:
            continue
        if not part.startswith(SECRET_PREFIX):
            raise ValueError(f"the secret {WEBHOOK_SECRET} must be '{SECRET_PREFIX}' + base64")
        try:
            key = base64.b64decode(part[len(SECRET_PREFIX):], validate=True)
        except ValueError:
            raise ValueError(f"the secret {WEBHOOK_SECRET} is not valid base64 after '{SECRET_PREFIX}'") from None
        if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
            raise ValueError(f"the secret {WEBHOOK_SECRET} must decode to {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes")
        keys.append(key)
    if not keys:
        raise ValueError(f"the secret {WEBHOOK_SECRET} is empty")
    return keys


def new_secret() -> str:
    """A fresh ``whsec_`` secret (32 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode()


def sign(keys: Iterable[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,<base64 HMAC-SHA256>`` per key, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join("v1," + base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode() for k in keys)


def signed_headers(keys: Iterable[bytes], body: bytes, *, msg_id: str | None = None,
                   timestamp: int | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of ``body``."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(keys, msg_id, timestamp, body), "content-type": "application/json"}


_secret_stores: dict[str, CachedSecrets] = {}


def signing_keys() -> list[bytes] | None:
    """The signing keys from the secret store (``MULTIAGENT_SECRETS``), None when unset."""
    from shared.secrets import open_secrets

    backend = os.environ.get("MULTIAGENT_SECRETS") or "env"
    if backend not in _secret_stores:
        _secret_stores[backend] = open_secrets(backend)
    value = _secret_stores[backend].get(WEBHOOK_SECRET)
    return parse_secrets(value) if value else None


# -- sending ---------------------------------------------------------------------------------


def _vetted_resolver_class() -> type[Any]:
    from aiohttp.resolver import ThreadedResolver

    class VettedResolver(ThreadedResolver):
        """Resolves like aiohttp, then refuses the whole lookup if any address is non-public
        (unless the host is operator-allowed); aiohttp connects only to what it returns."""

        def __init__(self, allow_hosts: frozenset[str]) -> None:
            super().__init__()
            self.allow_hosts = allow_hosts

        async def resolve(self, host: str, port: int = 0,
                          family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
            results = await super().resolve(host, port, family)
            if host.lower().rstrip(".") not in self.allow_hosts:
                bad = refused_addresses(r["host"] for r in results)
                if bad:
                    raise WebhookRefused(f"{host} resolves to a non-public address ({bad[0]})")
            if not results:
                raise WebhookRefused(f"{host} did not resolve")
            return results

    return VettedResolver


async def deliver(url: str, payload: dict[str, Any], keys: list[bytes]) -> int:
    """POST ``payload`` signed with ``keys`` to ``url`` under the rules above; the answer's
    status. Raises :class:`WebhookRefused` or aiohttp's errors."""
    import aiohttp

    allow = operator_allowed_hosts()
    check_url(url, allow)
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    connector = aiohttp.TCPConnector(resolver=_vetted_resolver_class()(allow), use_dns_cache=False,
                                     force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
                                     trust_env=False) as session:
        try:
            async with session.post(url, data=body, headers=signed_headers(keys, body),
                                    allow_redirects=False) as resp:
                await resp.content.read(65_536)  # the receiver's answer is not used; read a little, then drop it
                return resp.status
        except aiohttp.ClientConnectorError as exc:  # the resolver's refusal, wrapped by aiohttp
            if isinstance(exc.__cause__, WebhookRefused):
                raise exc.__cause__ from None
            raise


async def send_alert(url: str, payload: dict[str, Any]) -> None:
    """Fire-and-forget budget alert: ``{"type": "budget.alert", ...payload}``, signed; every
    failure (refused URL, no secret, DNS, TLS, timeout, non-2xx, redirect) is only logged."""
    try:
        keys = await asyncio.to_thread(signing_keys)
    except (ValueError, SecretUnavailable) as exc:
        log.error("budget alert webhook not sent: %s", exc)
        return
    if not keys:
        log.error("budget alert webhook not sent: no signing secret (set the secret %s, e.g. "
                  "MULTIAGENT_WEBHOOK_SECRET=%s...)", WEBHOOK_SECRET, SECRET_PREFIX)
        return
    target = _redacted(url)
    try:
        status = await deliver(url, {"type": "budget.alert", **payload}, keys)
    except WebhookRefused as exc:
        log.warning("budget alert webhook %s refused: %s", target, exc)
    except Exception as exc:  # noqa: BLE001 - an alert must never break a call
        log.warning("budget alert webhook %s failed: %s: %s", target, type(exc).__name__, exc)
    else:
        if not 200 <= status < 300:
            log.warning("budget alert webhook %s answered %s (redirects are not followed)", target, status)


def _redacted(url: str) -> str:
    """The URL without its query (which may carry a receiver's token)."""
    return url.split("?", 1)[0][:200]


__all__ = ["ALLOW_HOSTS_ENV", "WEBHOOK_SECRET", "WebhookRefused", "check_url", "deliver", "new_secret",
           "operator_allowed_hosts", "parse_secrets", "public_address", "send_alert", "sign", "signed_headers",
           "signing_keys", "validate_webhook_url"]
