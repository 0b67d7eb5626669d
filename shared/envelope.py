"""The signed budget envelope every team-to-team call carries (``X-Multiagent-Envelope``).

An envelope says, for one hop: which tenant pays, which run it belongs to, how much of the
run's budget this hop may still spend (micro-dollars), until when (epoch seconds), how
deep in the consultation chain it is and which teams the chain went through. It is
signed with HMAC-SHA256 under the internal key from the secret store
(``internal-signing-key``), so a team can trust it without a round trip.

Token format (ASCII, fits a header)::

    v1.<kid>.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key[kid], "v1.<kid>.<claims>"))>

Claims: ``ten`` tenant id, ``run`` run id, ``bud`` budget (µ$), ``dl`` deadline (epoch s),
``dep`` depth, ``chn`` chain of team names, ``id`` hop id (its budget window), ``iat``
issued at, and ``par``: the parent hop's *claims* (a JSON object, never a token: a nested
parent has no signature of its own, so it cannot be cut out and replayed; the outer
signature covers it). Nesting the parent is what makes "widened" checkable by the callee
alone: a child is valid only when it is narrower than its parent (budget <=, deadline <=,
depth = parent + 1, chain = parent's + this team, same tenant and run). A chain is at most
:data:`MAX_DEPTH` hops deep, so a token stays small.

Hop credentials. An envelope alone authorises no operation. What crosses the wire to a
team is a *hop credential* (:meth:`Envelope.for_hop`): the hop's envelope plus ``op`` (the
one operation it may run), ``bh`` (SHA-256 of the exact body bytes sent), ``jti`` (a random
single-use id) and ``exp`` (it is accepted for :data:`HOP_TTL_S` seconds at most, never past
the deadline). The receiving team checks all of them against the request (:func:`verify`
with ``operation`` and ``body``) and then claims ``hop:<jti>`` once in the state store
(:func:`replay_marker`, ``Store.claim_marker``: first claim wins on every backend), so a
captured credential is good for nothing but the one call it was issued for. An origin
envelope (depth 0) is never a hop credential. In-process hops never leave the process and
carry the :class:`Envelope` object itself (:func:`check`, no signature, no claim).

Rotation: the secret may hold several keys, ``kid1:secret1,kid2:secret2``; the first one
signs, every one listed verifies (publish the new key second, roll, then drop the old).
A secret without ``kid:`` gets a key id derived from its hash.

Local single-process mode (neither ``MULTIAGENT_TEAM_URLS`` nor ``MULTIAGENT_TEAM`` set)
with no key configured signs with a random per-process key: in-process calls never leave
the process. A distributed deployment with no key is a :class:`ConfigurationError` at the
first team-to-team call, never a silent bypass.

Budget enforcement: every envelope of the ancestry is a budget window in the state store
(:meth:`Envelope.windows`), reserved atomically with the tenant's own windows on every
model call, so a hop can never spend past its envelope nor the run past its total,
whatever the number of instances.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from shared.errors import ConfigurationError, Forbidden, Unavailable
from shared.secrets.base import INTERNAL_SIGNING_KEY, SecretUnavailable
from shared.store.base import WindowLimit

HEADER = "x-multiagent-envelope"
VERSION = "v1"
# Hops below the origin: run -> step team (1) -> consulted (2) -> consulted (3).
MAX_DEPTH = 3
WINDOW_TTL_S = 7 * 86_400
# A hop credential is accepted this long after it was minted (never past its deadline).
HOP_TTL_S = 30.0
# Clock skew allowed between the minting and the receiving instance.
_SKEW_S = 5.0
# The single-use marker of a credential outlives it by this much.
REPLAY_MARGIN_S = 120.0
_MAX_TOKEN_CHARS = 12_000


class EnvelopeRefused(Forbidden):
    """403: the envelope is forged, expired, widened, too deep, forms a cycle, or is not
    a fresh, unused hop credential for this very team, operation and body."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def body_sha256(body: bytes) -> str:
    """The hex SHA-256 a hop credential binds: over the raw bytes sent, not a re-encoding."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Keyring:
    """Signing keys by key id; the first one signs."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, value: str) -> Keyring:
        """``kid1:secret1,kid2:secret2`` or a bare secret (key id derived from its hash)."""
        keys: list[tuple[str, bytes]] = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            kid, sep, secret = part.partition(":")
            if not sep:
                kid, secret = "k" + hashlib.sha256(part.encode()).hexdigest()[:8], part
            kid, secret = kid.strip(), secret.strip()
            if not kid or not kid.replace("-", "").replace("_", "").isalnum() or len(secret) < 16:
                raise ConfigurationError(
                    f"the secret {INTERNAL_SIGNING_KEY} must be 'kid:secret[,kid:secret]' with alphanumeric key ids "
                    "and secrets of at least 16 characters"
                )
            keys.append((kid, secret.encode()))
        if not keys:
            raise ConfigurationError(f"the secret {INTERNAL_SIGNING_KEY} is empty")
        return cls(tuple(keys))

    @classmethod
    def ephemeral(cls) -> Keyring:
        """A random key for one process (local mode only)."""
        return cls((("local", secrets.token_bytes(32)),))

    @property
    def signing_kid(self) -> str:
        """The key id that signs."""
        return self.keys[0][0]

    def key(self, kid: str) -> bytes | None:
        """The key for ``kid``, None when unknown."""
        return next((k for i, k in self.keys if i == kid), None)


class KeySource:
    """Where an instance gets its :class:`Keyring` (the secret store, read through its TTL
    cache, so a rotated key is picked up without a restart)."""

    def __init__(self, secret_store: Any, distributed: bool) -> None:
        self.secret_store = secret_store
        self.distributed = distributed
        self._local: Keyring | None = None
        self._parsed: tuple[str, Keyring] | None = None
        self._lock = threading.Lock()

    def keyring(self) -> Keyring:
        """The current keyring (sync: may call the secret store; run it in a thread)."""
        try:
            value = self.secret_store.get(INTERNAL_SIGNING_KEY)
        except SecretUnavailable as exc:
            raise Unavailable(f"the secret store is unreachable, so the call cannot be signed: {exc}",
                              retry_after_s=2) from exc
        if value:
            with self._lock:
                if self._parsed is None or self._parsed[0] != value:
                    self._parsed = (value, Keyring.parse(value))
                return self._parsed[1]
        if self.distributed:
            raise ConfigurationError(
                f"team-to-team calls need the secret {INTERNAL_SIGNING_KEY} (MULTIAGENT_INTERNAL_SIGNING_KEY with "
                "MULTIAGENT_SECRETS=env) when MULTIAGENT_TEAM or MULTIAGENT_TEAM_URLS is set"
            )
        with self._lock:
            if self._local is None:
                self._local = Keyring.ephemeral()
            return self._local


@dataclass(frozen=True)
class Envelope:
    """The verified (or freshly minted) claims of one hop."""

    tenant: str
    run_id: str
    budget_micros: int
    deadline: float
    depth: int
    chain: tuple[str, ...]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    issued_at: float = field(default_factory=time.time)
    parent: Envelope | None = None
    token: str = ""
    # Hop credentials only (see :meth:`for_hop`): empty on a plain envelope.
    operation: str = ""
    body_sha256: str = ""
    jti: str = ""
    expires: float = 0.0

    # -- minting ----------------------------------------------------------------------
    @classmethod
    def root(cls, keyring: Keyring, *, tenant: str, run_id: str, budget_micros: int, deadline: float,
             chain: tuple[str, ...] = (), hop_id: str | None = None) -> Envelope:
        """A signed origin envelope (depth 0): a run, or a client's call that consults."""
        env = cls(tenant=tenant, run_id=run_id, budget_micros=max(0, int(budget_micros)), deadline=deadline,
                  depth=0, chain=chain, id=hop_id or uuid.uuid4().hex[:16])
        return env._signed(keyring)

    def child(self, keyring: Keyring, team: str, budget_micros: int, deadline: float | None = None) -> Envelope:
        """A narrower envelope for a call to ``team`` (budget and deadline clamped to this one's)."""
        env = Envelope(tenant=self.tenant, run_id=self.run_id,
                       budget_micros=max(0, min(int(budget_micros), self.budget_micros)),
                       deadline=min(deadline or self.deadline, self.deadline), depth=self.depth + 1,
                       chain=self.chain + (team,), parent=self)
        return env._signed(keyring)

    def for_hop(self, keyring: Keyring, operation: str, body: bytes, *, ttl_s: float = HOP_TTL_S,
                now: float | None = None) -> Envelope:
        """The wire credential of one HTTP hop under this (child) envelope: bound to its team
        (the chain's last), ``operation`` and the SHA-256 of ``body`` (the exact bytes sent),
        single use (a fresh ``jti``) and short lived (``ttl_s``, never past the deadline).
        Same hop id, so the same budget window, as this envelope."""
        if self.parent is None:
            raise ValueError("an origin envelope opens no hop; mint a child for the team first")
        now = time.time() if now is None else now
        hop = replace(self, operation=operation, body_sha256=body_sha256(body), jti=secrets.token_urlsafe(16),
                      expires=min(now + min(max(1.0, ttl_s), HOP_TTL_S), self.deadline), issued_at=now,
                      token="")
        return hop._signed(keyring)

    def claims(self) -> dict[str, Any]:
        """The signed claims (the parent nested as its claims, never as a usable token)."""
        out: dict[str, Any] = {"ten": self.tenant, "run": self.run_id, "bud": self.budget_micros,
                               "dl": round(self.deadline, 3), "dep": self.depth, "chn": list(self.chain),
                               "id": self.id, "iat": round(self.issued_at, 3)}
        if self.jti:
            out.update(op=self.operation, bh=self.body_sha256, jti=self.jti, exp=round(self.expires, 3))
        if self.parent is not None:
            out["par"] = self.parent.claims()
        return out

    def _signed(self, keyring: Keyring) -> Envelope:
        kid = keyring.signing_kid
        body = _b64(json.dumps(self.claims(), separators=(",", ":"), sort_keys=True).encode())
        signing_input = f"{VERSION}.{kid}.{body}"
        sig = _b64(hmac.new(keyring.keys[0][1], signing_input.encode(), hashlib.sha256).digest())
        return Envelope(**{**self.__dict__, "token": f"{signing_input}.{sig}"})

    # -- budget windows -----------------------------------------------------------------
    @property
    def window_key(self) -> str:
        """This hop's budget window: ``run:<run id>`` for the origin, ``run:<run id>/<hop>`` below."""
        return f"run:{self.run_id}" if self.parent is None else f"run:{self.run_id}/{self.id}"

    def lineage(self) -> list[Envelope]:
        """This envelope and its ancestors, origin first."""
        out: list[Envelope] = []
        node: Envelope | None = self
        while node is not None:
            out.append(node)
            node = node.parent
        return out[::-1]

    def windows(self) -> list[WindowLimit]:
        """Every window a model call under this envelope must fit in (origin first)."""
        return [WindowLimit(e.window_key, e.budget_micros, e.deadline + WINDOW_TTL_S) for e in self.lineage()]


def run_window_key(run_id: str) -> str:
    """The budget window holding everything a run spends."""
    return f"run:{run_id}"


def _decode(token: str, keyring: Keyring) -> dict[str, Any]:
    if not token or len(token) > _MAX_TOKEN_CHARS:
        raise EnvelopeRefused("the envelope is missing or too large")
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise EnvelopeRefused("the envelope is malformed")
    _, kid, body, sig = parts
    key = keyring.key(kid)
    if key is None:
        raise EnvelopeRefused(f"the envelope is signed with an unknown key id {kid!r}")
    expected = hmac.new(key, f"{VERSION}.{kid}.{body}".encode(), hashlib.sha256).digest()
    try:
        given = _unb64(sig)
    except (binascii.Error, ValueError):
        given = b""
    if not hmac.compare_digest(expected, given):  # checked before the claims are even parsed
        raise EnvelopeRefused("the envelope's signature does not match (forged or altered)")
    try:
        claims = json.loads(_unb64(body))
    except (binascii.Error, ValueError):
        raise EnvelopeRefused("the envelope is malformed") from None
    if not isinstance(claims, dict):
        raise EnvelopeRefused("the envelope is malformed")
    return claims


def _from_claims(claims: dict[str, Any], token: str, parent: Envelope | None) -> Envelope:
    try:
        hop: dict[str, Any] = {}
        if "jti" in claims:
            hop = {"operation": str(claims["op"]), "body_sha256": str(claims["bh"]), "jti": str(claims["jti"]),
                   "expires": float(claims["exp"])}
        return Envelope(tenant=str(claims["ten"]), run_id=str(claims["run"]), budget_micros=int(claims["bud"]),
                        deadline=float(claims["dl"]), depth=int(claims["dep"]),
                        chain=tuple(str(c) for c in claims["chn"]), id=str(claims["id"]),
                        issued_at=float(claims["iat"]), parent=parent, token=token, **hop)
    except (KeyError, TypeError, ValueError):
        raise EnvelopeRefused("the envelope is missing claims") from None


def _build(claims: dict[str, Any], token: str, levels: int = 0) -> Envelope:
    if levels > MAX_DEPTH + 1:
        raise EnvelopeRefused(f"the envelope chain is deeper than {MAX_DEPTH} hops")
    par = claims.get("par")
    if par is not None and not isinstance(par, dict):
        # An old-style nested token: a parent is carried as claims only, so none can be cut out and reused.
        raise EnvelopeRefused("the envelope's parent must be nested as claims, not as a token")
    parent = _build(par, "", levels + 1) if par else None
    env = _from_claims(claims, token, parent)
    if parent is None:
        if env.depth != 0:
            raise EnvelopeRefused("an origin envelope must have depth 0")
        return env
    if (env.tenant, env.run_id) != (parent.tenant, parent.run_id):
        raise EnvelopeRefused("the envelope changes the tenant or run of its parent")
    if env.budget_micros > parent.budget_micros:
        raise EnvelopeRefused("the envelope widens its parent's budget")
    if env.deadline > parent.deadline + 1e-6:
        raise EnvelopeRefused("the envelope extends its parent's deadline")
    if env.depth != parent.depth + 1 or env.chain[:-1] != parent.chain or len(env.chain) != len(parent.chain) + 1:
        raise EnvelopeRefused("the envelope's depth or chain does not extend its parent's by one hop")
    return env


def _parse(token: str, keyring: Keyring) -> Envelope:
    return _build(_decode(token, keyring), token)


def check(env: Envelope, *, tenant_id: str | None, team: str | None, now: float | None = None) -> Envelope:
    """The checks on an envelope's claims that do not need its signature: for an in-process
    hop, whose :class:`Envelope` never left the process (:meth:`Envelope.child` narrows by
    construction). A past deadline, more than :data:`MAX_DEPTH` hops, another tenant, a chain
    that does not end at ``team`` or would form a cycle: :class:`EnvelopeRefused`."""
    now = time.time() if now is None else now
    if env.deadline <= now:
        raise EnvelopeRefused(f"the envelope expired {now - env.deadline:.1f} s ago")
    if env.depth > MAX_DEPTH:
        raise EnvelopeRefused(f"the call is {env.depth} hops deep; the limit is {MAX_DEPTH}")
    if tenant_id is not None and env.tenant != tenant_id:
        raise EnvelopeRefused("the envelope belongs to another tenant")
    if team is not None:
        if not env.chain or env.chain[-1] != team:
            raise EnvelopeRefused(f"the envelope is not addressed to team {team!r}")
        if team in env.chain[:-1]:
            raise EnvelopeRefused(f"calling {team!r} again would form a cycle ({' -> '.join(env.chain)})")
    return env


def _check_hop(env: Envelope, operation: str, body: bytes, now: float) -> None:
    if not env.jti or env.parent is None:
        raise EnvelopeRefused("this envelope is not a hop credential: only the single-use credential of one hop "
                              "(bound to its team, operation and body) opens an operation")
    if env.expires <= now:
        raise EnvelopeRefused(f"the hop credential expired {now - env.expires:.1f} s ago")
    if env.expires - env.issued_at > HOP_TTL_S + 1e-3 or env.issued_at > now + _SKEW_S:
        raise EnvelopeRefused(f"the hop credential claims to live longer than {HOP_TTL_S:.0f} s")
    if env.operation != operation:
        raise EnvelopeRefused(f"the hop credential is for operation {env.operation!r}, not {operation!r}")
    if not hmac.compare_digest(env.body_sha256.encode(), body_sha256(body).encode()):
        raise EnvelopeRefused("the body is not the one the hop credential was issued for")


def verify(token: str, keyring: Keyring, *, tenant_id: str | None, team: str | None, now: float | None = None,
           operation: str | None = None, body: bytes | None = None) -> Envelope:
    """The envelope of an incoming call to ``team``, or :class:`EnvelopeRefused` (403).

    Refused: a bad signature or unknown key id (forged), a past deadline (expired), a
    budget above or deadline after its parent's or a depth not one more (widened), more
    than :data:`MAX_DEPTH` hops, ``team`` already earlier in the chain (cycle), a chain
    that does not end at ``team``, or another tenant than the caller's key.

    With ``operation`` (an operation call), the token must also be a hop credential
    (:meth:`Envelope.for_hop`) for that operation and the SHA-256 of ``body`` (the raw
    bytes received), not past its ``exp``. Single use is the caller's part: claim
    :func:`replay_marker` in the store before running anything.
    """
    env = _parse(token, keyring)
    now = time.time() if now is None else now
    check(env, tenant_id=tenant_id, team=team, now=now)
    if operation is not None:
        _check_hop(env, operation, body if body is not None else b"", now)
    return env


def replay_marker(env: Envelope) -> tuple[str, float]:
    """The store marker that makes a hop credential single use, and until when to keep it
    (a little past the credential's own expiry, after which it is refused anyway)."""
    return f"hop:{env.jti}", env.expires + REPLAY_MARGIN_S


__all__ = ["HEADER", "HOP_TTL_S", "MAX_DEPTH", "Envelope", "EnvelopeRefused", "KeySource", "Keyring", "body_sha256",
           "check", "replay_marker", "run_window_key", "verify"]
