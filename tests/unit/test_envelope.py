"""The signed budget envelope: signing, rotation, and every refusal the callee makes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from shared.envelope import (
    HOP_TTL_S,
    MAX_DEPTH,
    Envelope,
    EnvelopeRefused,
    Keyring,
    KeySource,
    body_sha256,
    check,
    replay_marker,
    verify,
)
from shared.errors import ConfigurationError

KEYS = Keyring.parse("k2:second-secret-0123456789,k1:first-secret-0123456789")


def root(keyring: Keyring = KEYS, **kw) -> Envelope:  # type: ignore[no-untyped-def]
    args = {"tenant": "ten_a", "run_id": "run_1", "budget_micros": 1_000_000, "deadline": time.time() + 60}
    return Envelope.root(keyring, **{**args, **kw})


def forge(parent: Envelope, **claims) -> Envelope:  # type: ignore[no-untyped-def]
    """A validly signed child whose claims are whatever the caller says (what a buggy or
    malicious key holder could mint)."""
    base = {"tenant": parent.tenant, "run_id": parent.run_id, "budget_micros": parent.budget_micros,
            "deadline": parent.deadline, "depth": parent.depth + 1, "chain": parent.chain + ("finance",),
            "parent": parent}
    return Envelope(**{**base, **claims})._signed(KEYS)


def test_a_child_verifies_and_narrows():
    # given an origin envelope and a child for finance with a smaller budget
    child = root().child(KEYS, "finance", 400_000, deadline=time.time() + 30)
    # when the callee verifies it
    env = verify(child.token, KEYS, tenant_id="ten_a", team="finance")
    # then the claims survive and the budget windows cover the whole lineage
    assert (env.budget_micros, env.depth, env.chain, env.run_id) == (400_000, 1, ("finance",), "run_1")
    assert [w.key for w in env.windows()] == ["run:run_1", f"run:run_1/{env.id}"]
    assert [w.limit_micros for w in env.windows()] == [1_000_000, 400_000]
    # and a child can never be minted wider than its parent
    wide = root().child(KEYS, "finance", 5_000_000, deadline=time.time() + 3_600)
    assert wide.budget_micros == 1_000_000 and wide.deadline <= root().deadline + 1


def test_forged_signature_and_unknown_key_are_refused():
    token = root().child(KEYS, "finance", 10).token
    version, kid, body, sig = token.split(".")
    tampered = ".".join([version, kid, body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1], sig])
    with pytest.raises(EnvelopeRefused, match="signature"):
        verify(tampered, KEYS, tenant_id=None, team="finance")
    other = root(Keyring.parse("k1:an-attacker-secret-0123")).child(Keyring.parse("k1:an-attacker-secret-0123"),
                                                                     "finance", 10)
    with pytest.raises(EnvelopeRefused, match="signature"):
        verify(other.token, KEYS, tenant_id=None, team="finance")
    unknown = root(Keyring.parse("k9:whatever-secret-0123456")).token
    with pytest.raises(EnvelopeRefused, match="unknown key id"):
        verify(unknown, KEYS, tenant_id=None, team=None)
    with pytest.raises(EnvelopeRefused):
        verify("not-a-token", KEYS, tenant_id=None, team=None)


def test_rotation_old_key_still_verifies_new_key_signs():
    # given an envelope signed before the rotation (only k1 existed)
    old = Keyring.parse("k1:first-secret-0123456789")
    token = root(old).child(old, "finance", 10).token
    # then the rotated keyring (k2 first, k1 second) still accepts it and signs with k2
    assert verify(token, KEYS, tenant_id=None, team="finance").budget_micros == 10
    assert root().token.split(".")[1] == "k2"
    # and a bare secret gets a derived key id
    assert Keyring.parse("a-bare-secret-of-some-length").signing_kid.startswith("k")


def test_expired_is_refused():
    stale = root(deadline=time.time() - 1).child(KEYS, "finance", 10)
    with pytest.raises(EnvelopeRefused, match="expired"):
        verify(stale.token, KEYS, tenant_id=None, team="finance")


@pytest.mark.parametrize("claims, message", [
    ({"budget_micros": 2_000_000}, "widens its parent's budget"),
    ({"deadline_offset": 600}, "extends its parent's deadline"),
    ({"depth": 0}, "depth or chain"),
    ({"tenant": "ten_other"}, "tenant or run"),
])
def test_widened_is_refused(claims, message):
    parent = root()
    if "deadline_offset" in claims:
        claims = {"deadline": parent.deadline + claims.pop("deadline_offset")}
    with pytest.raises(EnvelopeRefused, match=message):
        verify(forge(parent, **claims).token, KEYS, tenant_id=None, team="finance")


def test_depth_past_the_limit_and_cycles_are_refused():
    env = root(chain=("t0",))
    for i in range(1, MAX_DEPTH + 1):
        env = env.child(KEYS, f"t{i}", 10)
    verify(env.token, KEYS, tenant_id=None, team=f"t{MAX_DEPTH}")  # at the limit: fine
    too_deep = env.child(KEYS, "finance", 10)
    with pytest.raises(EnvelopeRefused, match="hops deep"):
        verify(too_deep.token, KEYS, tenant_id=None, team="finance")
    cycle = root(chain=("finance",)).child(KEYS, "legal", 10).child(KEYS, "finance", 10)
    with pytest.raises(EnvelopeRefused, match="cycle"):
        verify(cycle.token, KEYS, tenant_id=None, team="finance")


def test_wrong_tenant_or_team_is_refused():
    child = root().child(KEYS, "finance", 10)
    with pytest.raises(EnvelopeRefused, match="another tenant"):
        verify(child.token, KEYS, tenant_id="ten_b", team="finance")
    with pytest.raises(EnvelopeRefused, match="not addressed"):
        verify(child.token, KEYS, tenant_id="ten_a", team="legal")


class _Secrets:
    def __init__(self, value: str | None) -> None:
        self.value = value

    def get(self, name: str) -> str | None:
        return self.value


def test_key_source_local_random_key_or_configuration_error():
    # local single-process mode: a random key, stable for the process
    local = KeySource(_Secrets(None), distributed=False)
    assert local.keyring() is local.keyring() and local.keyring().signing_kid == "local"
    # distributed (MULTIAGENT_TEAM or MULTIAGENT_TEAM_URLS set) with no key: never a silent bypass
    with pytest.raises(ConfigurationError, match="internal-signing-key"):
        KeySource(_Secrets(None), distributed=True).keyring()
    # a configured secret wins in both modes, and a rotated value is picked up
    secrets = _Secrets("k1:first-secret-0123456789")
    source = KeySource(secrets, distributed=True)
    assert source.keyring().signing_kid == "k1"
    secrets.value = "k2:second-secret-0123456789,k1:first-secret-0123456789"
    assert source.keyring().signing_kid == "k2"
    with pytest.raises(ConfigurationError):
        Keyring.parse("k1:short")


# -- hop credentials: what actually crosses the wire ----------------------------------------------
BODY = b'{"question": "Is this legal?"}'


def hop_for(team: str = "finance", operation: str = "ask", body: bytes = BODY, **kw) -> Envelope:  # type: ignore[no-untyped-def]
    return root().child(KEYS, team, 400_000).for_hop(KEYS, operation, body, **kw)


def test_a_hop_credential_is_bound_to_team_operation_and_body():
    cred = hop_for()
    env = verify(cred.token, KEYS, tenant_id="ten_a", team="finance", operation="ask", body=BODY)
    # the same budget window as the envelope it was minted from; a random single-use id; seconds to live
    assert env.window_key == f"run:run_1/{env.id}" and len(env.jti) >= 20
    assert env.operation == "ask" and env.body_sha256 == body_sha256(BODY)
    assert 0 < env.expires - time.time() <= HOP_TTL_S + 0.01
    assert replay_marker(env) == (f"hop:{env.jti}", env.expires + 120.0)
    assert hop_for().jti != cred.jti  # every hop its own id
    with pytest.raises(EnvelopeRefused, match="for operation 'ask', not 'review_budget'"):
        verify(cred.token, KEYS, tenant_id=None, team="finance", operation="review_budget", body=BODY)
    with pytest.raises(EnvelopeRefused, match="not addressed"):
        verify(cred.token, KEYS, tenant_id=None, team="legal", operation="ask", body=BODY)
    for other in (b'{"question": "Is this legal?" }', b"", BODY + b" "):  # the raw bytes, not their meaning
        with pytest.raises(EnvelopeRefused, match="body"):
            verify(cred.token, KEYS, tenant_id=None, team="finance", operation="ask", body=other)


def test_a_hop_credential_lives_seconds_and_cannot_claim_longer():
    cred = hop_for(ttl_s=3_600)
    assert cred.expires - cred.issued_at <= HOP_TTL_S + 0.01  # clamped
    with pytest.raises(EnvelopeRefused, match="expired"):
        verify(cred.token, KEYS, tenant_id=None, team="finance", operation="ask", body=BODY,
               now=time.time() + HOP_TTL_S + 1)
    # never past the envelope's own deadline either
    short = root(deadline=time.time() + 5).child(KEYS, "finance", 10).for_hop(KEYS, "ask", BODY)
    assert short.expires <= short.deadline
    # a key holder signing a long-lived one by hand is refused
    long_lived = Envelope(**{**cred.__dict__, "expires": cred.issued_at + 3_600})._signed(KEYS)
    with pytest.raises(EnvelopeRefused, match="longer than"):
        verify(long_lived.token, KEYS, tenant_id=None, team="finance", operation="ask", body=BODY)


def test_only_the_outermost_hop_credential_opens_an_operation():
    parent = root(chain=("legal",))
    child = parent.child(KEYS, "finance", 10)
    # a plain envelope or an origin one is no hop credential
    for token in (child.token, parent.token):
        with pytest.raises(EnvelopeRefused, match="not a hop credential"):
            verify(token, KEYS, tenant_id=None, team=parent.chain[-1] if token == parent.token else "finance",
                   operation="ask", body=BODY)
    with pytest.raises(ValueError):
        parent.for_hop(KEYS, "ask", BODY)
    # the parent rides inside as claims: there is no token to cut out of a captured credential
    cred = child.for_hop(KEYS, "ask", BODY)
    claims = json.loads(base64.urlsafe_b64decode(cred.token.split(".")[2] + "=="))
    assert isinstance(claims["par"], dict) and not any(isinstance(v, str) and v.startswith("v1.")
                                                       for v in claims["par"].values())
    assert claims["par"]["chn"] == ["legal"] and "jti" not in claims["par"]
    # an old-style nested parent token is refused outright
    old_style = {**claims, "par": parent.token}
    body = base64.urlsafe_b64encode(json.dumps(old_style).encode()).rstrip(b"=").decode()
    signing_input = f"v1.{KEYS.signing_kid}.{body}"
    sig = base64.urlsafe_b64encode(hmac.new(KEYS.keys[0][1], signing_input.encode(), hashlib.sha256).digest())
    with pytest.raises(EnvelopeRefused, match="nested as claims"):
        verify(f"{signing_input}.{sig.rstrip(b'=').decode()}", KEYS, tenant_id=None, team="finance")
    # a consultation made under a verified hop credential nests it, and still verifies
    received = verify(cred.token, KEYS, tenant_id=None, team="finance", operation="ask", body=BODY)
    onward = received.child(KEYS, "research", 5).for_hop(KEYS, "ask", BODY)
    again = verify(onward.token, KEYS, tenant_id=None, team="research", operation="ask", body=BODY)
    assert again.chain == ("legal", "finance", "research") and again.parent and again.parent.jti == cred.jti
    assert again.parent.token == ""  # parents carry no token of their own


def test_in_process_check_needs_no_signature():
    child = root().child(KEYS, "finance", 10)
    assert check(child, tenant_id="ten_a", team="finance") is child
    with pytest.raises(EnvelopeRefused, match="not addressed"):
        check(child, tenant_id="ten_a", team="legal")
    with pytest.raises(EnvelopeRefused, match="another tenant"):
        check(child, tenant_id="ten_b", team="finance")
    with pytest.raises(EnvelopeRefused, match="expired"):
        check(child, tenant_id=None, team="finance", now=child.deadline + 1)
