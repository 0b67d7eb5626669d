"""Budgets rule 6: every money or limit input is finite, 0 <= USD <= 1e9, rates are whole
numbers, flags are booleans — checked in one place (shared/limits.py) for the admin API,
the CLI, ``POST /v1/runs`` and the environment defaults. A bad one is a 422 naming the
field (HTTP) or one line on stderr (CLI), and nothing is stored."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from shared import limits
from shared.config import Settings
from shared.errors import ConfigurationError, ValidationFailed
from tests.e2e.servers import server_env
from tests.helpers import LocalApp, local_app
from tests.integration.test_cli import assert_one_line_error, multiagent

pytestmark = pytest.mark.integration

ADMIN = "money-admin-key-0123456789"
AUTH = {"authorization": f"Bearer {ADMIN}"}

# (raw JSON body, the loc the 422 must name): the tester's attacks first, then their cousins.
ATTACKS: list[tuple[str, list[Any]]] = [
    ('{"daily_usd": 1e13}', ["body", "daily_usd"]),  # was stored; every later call of the tenant a 500
    ('{"daily_usd": NaN}', ["body", "daily_usd"]),  # Python's json parser accepts NaN/Infinity literals
    ('{"daily_usd": Infinity}', ["body", "daily_usd"]),
    ('{"monthly_usd": -Infinity}', ["body", "monthly_usd"]),
    ('{"daily_usd": true}', ["body", "daily_usd"]),  # was stored as $1.00
    ('{"team_daily_usd": {"legal": -5}}', ["body", "team_daily_usd", "legal"]),
    ('{"disabled": "no"}', ["body", "disabled"]),  # was stored truthy: the tenant disabled
    ('{"daily_usd": 1000000000.01}', ["body", "daily_usd"]),
    ('{"daily_usd": 1' + "0" * 30 + '}', ["body", "daily_usd"]),
    ('{"monthly_usd": -0.5}', ["body", "monthly_usd"]),
    ('{"monthly_usd": "5"}', ["body", "monthly_usd"]),
    ('{"team_daily_usd": {"legal": NaN}}', ["body", "team_daily_usd", "legal"]),
    ('{"team_daily_usd": {"legal": true}}', ["body", "team_daily_usd", "legal"]),
    ('{"team_daily_usd": {"legal": 1e10}}', ["body", "team_daily_usd", "legal"]),
    ('{"team_daily_usd": {"astrology": 5}}', ["body", "team_daily_usd", "astrology"]),
    ('{"team_daily_usd": [5]}', ["body", "team_daily_usd"]),
    ('{"rpm": 1.5}', ["body", "rpm"]),
    ('{"rpm": 7.0}', ["body", "rpm"]),
    ('{"rpm": true}', ["body", "rpm"]),
    ('{"rpm": -1}', ["body", "rpm"]),
    ('{"tpm": 1000000000000}', ["body", "tpm"]),
    ('{"tpm": "100"}', ["body", "tpm"]),
    ('{"alert_threshold": 1.5}', ["body", "alert_threshold"]),
    ('{"alert_threshold": NaN}', ["body", "alert_threshold"]),
    ('{"alert_threshold": true}', ["body", "alert_threshold"]),
    ('{"disabled": 1}', ["body", "disabled"]),
    ('{"content_logging": "yes"}', ["body", "content_logging"]),
    ('{"teams": "legal"}', ["body", "teams"]),
    ('{"name": 5}', ["body", "name"]),
    ('{"tenant_id": "ten_other"}', ["body", "tenant_id"]),  # a field named like a parameter: 422, not 500
    ("[1, 2]", ["body"]),
]


def assert_validation_error(resp: Any, loc: list[Any]) -> dict[str, Any]:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["type"] == "/problems/validation-error" and body["status"] == 422
    assert [e["loc"] for e in body["errors"]] == [loc], body
    assert all(isinstance(e["msg"], str) and e["msg"] for e in body["errors"])
    return body


async def raw(app: LocalApp, method: str, path: str, text: str, **headers: str) -> Any:
    return await app.client.request(method, path, content=text.encode(),
                                    headers={"content-type": "application/json", **headers})


@pytest.fixture
async def admin_app(tmp_path):  # type: ignore[no-untyped-def]
    async with local_app(f"sqlite:///{tmp_path}/money.db", MULTIAGENT_ADMIN_KEY=ADMIN) as app:
        yield app


async def make_tenant(app: LocalApp) -> tuple[dict[str, Any], str]:
    resp = await app.client.post("/v1/admin/tenants", headers=AUTH, json={
        "name": "acme", "daily_usd": 3, "monthly_usd": 50, "rpm": 7, "tpm": 9000,
        "team_daily_usd": {"legal": 2}, "alert_threshold": 0.5})
    assert resp.status_code == 201, resp.text
    created = resp.json()
    key = created.pop("api_key")
    return created, key


@pytest.mark.parametrize(("text", "loc"), ATTACKS, ids=[a[0][:40] for a in ATTACKS])
async def test_a_bad_patch_is_a_422_naming_the_field_and_changes_nothing(admin_app, text, loc):
    app = admin_app
    before, key = await make_tenant(app)
    tid = before["tenant_id"]
    assert_validation_error(await raw(app, "PATCH", f"/v1/admin/tenants/{tid}", text, **AUTH), loc)
    after = await app.client.get(f"/v1/admin/tenants/{tid}", headers=AUTH)
    assert after.status_code == 200 and after.json() == before
    # and the tenant keeps working: its calls are neither 500 nor refused as disabled
    usage = await app.client.get("/v1/usage", headers={"authorization": f"Bearer {key}"})
    assert usage.status_code == 200, usage.text
    assert usage.json()["limits"]["daily_usd"] == 3
    audit = [e.type for e in app.runtime.store.list_audit(tid, 100)]
    assert "admin.tenant_updated" not in audit


@pytest.mark.parametrize(("text", "loc"), [a for a in ATTACKS if a[1] != ["body", "tenant_id"]],
                         ids=[a[0][:40] for a in ATTACKS if a[1] != ["body", "tenant_id"]])
async def test_a_bad_create_is_a_422_naming_the_field_and_creates_nothing(admin_app, text, loc):
    app = admin_app
    if text.startswith("{"):
        text = '{"name": "globex", ' + text[1:] if loc != ["body", "name"] else text
    assert_validation_error(await raw(app, "POST", "/v1/admin/tenants", text, **AUTH), loc)
    listed = await app.client.get("/v1/admin/tenants", headers=AUTH)
    assert listed.status_code == 200 and listed.json()["tenants"] == []


async def test_valid_money_and_limits_are_stored_exactly(admin_app):
    app = admin_app
    before, _ = await make_tenant(app)
    assert (before["daily_usd"], before["monthly_usd"], before["rpm"], before["tpm"]) == (3, 50, 7, 9000)
    assert before["team_daily_usd"] == {"legal": 2} and before["alert_threshold"] == 0.5
    tid = before["tenant_id"]
    resp = await app.client.patch(f"/v1/admin/tenants/{tid}", headers=AUTH, json={
        "daily_usd": 0, "monthly_usd": 1e9, "rpm": 1_000_000_000, "tpm": 1,
        "team_daily_usd": {"legal": 0.000001, "finance": 1_000_000_000}, "alert_threshold": 1,
        "disabled": False, "content_logging": True})
    assert resp.status_code == 200, resp.text
    after = resp.json()
    assert (after["daily_usd"], after["monthly_usd"], after["rpm"], after["tpm"]) == (0, 1e9, 1_000_000_000, 1)
    assert after["team_daily_usd"] == {"legal": 0.000001, "finance": 1e9}
    assert after["disabled"] is False and after["content_logging"] is True and after["alert_threshold"] == 1
    stored = app.runtime.store.get_tenant(tid)
    assert stored is not None and stored.monthly_limit_micros == 10**15 and stored.daily_limit_micros == 0
    assert stored.team_daily_limit_micros == {"legal": 1, "finance": 10**15}
    assert isinstance(stored.daily_limit_micros, int) and isinstance(stored.monthly_limit_micros, int)


RUN_ATTACKS = ['NaN', 'Infinity', '-Infinity', '1e13', 'true', '"1"', '0', '-1', '0.0000001', '1000000000.5']


@pytest.mark.parametrize("max_usd", RUN_ATTACKS)
async def test_a_run_with_a_bad_max_usd_is_a_422_and_no_run(admin_app, max_usd):
    app = admin_app
    tenant_id, key = app.tenant("runner")
    text = '{"task": "Plan a launch", "teams": ["finance"], "max_usd": ' + max_usd + "}"
    assert_validation_error(await raw(app, "POST", "/v1/runs", text, authorization=f"Bearer {key}"),
                            ["body", "max_usd"])
    assert not [e for e in app.runtime.store.list_audit(tenant_id, 100) if e.type == "run.created"]


def test_the_validators_directly():
    loc = ["body", "x"]
    assert limits.usd_micros(0, loc) == 0 and limits.usd_micros(1e9, loc) == 10**15
    assert limits.usd_micros(0.12, loc) == 120_000 and limits.usd_micros(3, loc) == 3_000_000
    for bad in (math.nan, math.inf, -math.inf, -0.01, 1e9 + 1, 10**400, True, False, "1", None, [1]):
        with pytest.raises(ValidationFailed) as caught:
            limits.usd_micros(bad, loc)
        assert caught.value.extra["errors"][0]["loc"] == loc
    with pytest.raises(ValidationFailed):
        limits.usd_micros(0.0000001, loc, positive=True)
    assert limits.rate(1, loc) == 1 and limits.rate(10**9, loc) == 10**9
    for bad in (0, 10**9 + 1, 1.0, True, "5", math.nan):
        with pytest.raises(ValidationFailed):
            limits.rate(bad, loc)
    assert limits.fraction(1, loc) == 1.0
    for bad in (0, 1.01, math.nan, True):
        with pytest.raises(ValidationFailed):
            limits.fraction(bad, loc)
    assert limits.flag(False, loc) is False
    for bad in ("no", "false", 0, 1, None):
        with pytest.raises(ValidationFailed):
            limits.flag(bad, loc)


@pytest.mark.parametrize(("variable", "value"), [
    ("MULTIAGENT_DEFAULT_DAILY_USD", "nan"), ("MULTIAGENT_DEFAULT_DAILY_USD", "inf"),
    ("MULTIAGENT_DEFAULT_MONTHLY_USD", "1e13"), ("MULTIAGENT_DEFAULT_MONTHLY_USD", "-5"),
    ("MULTIAGENT_DEFAULT_RPM", "1.5"), ("MULTIAGENT_DEFAULT_RPM", "0"), ("MULTIAGENT_DEFAULT_TPM", "1e12"),
    ("MULTIAGENT_DEFAULT_TPM", "10000000000"),
])
def test_environment_defaults_obey_the_same_rule(variable, value):
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({variable: value})


def test_environment_defaults_that_are_valid_are_read():
    settings = Settings.from_env({"MULTIAGENT_DEFAULT_DAILY_USD": "0", "MULTIAGENT_DEFAULT_MONTHLY_USD": "1e9",
                                  "MULTIAGENT_DEFAULT_RPM": "5", "MULTIAGENT_DEFAULT_TPM": "1000000000"})
    assert (settings.default_daily_usd, settings.default_monthly_usd) == (0, 1e9)
    assert (settings.default_rpm, settings.default_tpm) == (5, 10**9)


# -- the CLI: real processes, one SQLite file -------------------------------------------------
@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return server_env(f"sqlite:///{tmp_path}/cli.db")


CLI_ATTACKS: list[tuple[list[str], str]] = [
    (["--daily-usd", "nan"], "daily_usd"),
    (["--daily-usd", "inf"], "daily_usd"),
    (["--daily-usd", "1e13"], "daily_usd"),
    (["--monthly-usd", "-5"], "monthly_usd"),
    (["--daily-usd", "true"], "daily_usd"),
    (["--rpm", "1.5"], "rpm"),
    (["--tpm", "0"], "tpm"),
    (["--alert-threshold", "2"], "alert_threshold"),
    (["--team-daily-usd", "legal=-5"], "team_daily_usd.legal"),
    (["--team-daily-usd", "legal=nan"], "team_daily_usd.legal"),
    (["--team-daily-usd", "legal"], "team_daily_usd"),
    (["--team-daily-usd", "astrology=5"], "team_daily_usd.astrology"),
]


def test_the_cli_refuses_bad_money_in_one_line_and_changes_nothing(env):
    created = multiagent(env, "tenants", "create", "acme", "--daily-usd", "3", "--rpm", "7", "--json")
    assert created.returncode == 0, created.stderr
    before = json.loads(created.stdout)
    before.pop("api_key")
    for args, field in CLI_ATTACKS:
        assert_one_line_error(multiagent(env, "tenants", "update", before["tenant_id"], *args), "422", field)
        assert_one_line_error(multiagent(env, "tenants", "create", "globex", *args), "422", field)
    shown = json.loads(multiagent(env, "tenants", "show", before["tenant_id"], "--json").stdout)
    assert shown == before
    listed = json.loads(multiagent(env, "tenants", "list", "--json").stdout)["tenants"]
    assert [t["name"] for t in listed] == ["acme"]
    # valid values still work, team caps included
    ok = multiagent(env, "tenants", "update", before["tenant_id"], "--daily-usd", "1e9", "--tpm", "1000000000",
                    "--team-daily-usd", "legal=5,finance=0.5", "--json")
    assert ok.returncode == 0, ok.stderr
    updated = json.loads(ok.stdout)
    assert updated["daily_usd"] == 1e9 and updated["tpm"] == 10**9
    assert updated["team_daily_usd"] == {"legal": 5, "finance": 0.5}


def test_the_cli_refuses_bad_environment_defaults_in_one_line(env):
    out = multiagent({**env, "MULTIAGENT_DEFAULT_DAILY_USD": "nan"}, "tenants", "create", "acme")
    assert_one_line_error(out, "MULTIAGENT_DEFAULT_DAILY_USD")
