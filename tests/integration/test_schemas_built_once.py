"""Tool definitions and output schemas are built once per process, not on every model turn
(pydantic's JSON Schema generation was the costliest step of a turn). Counted, not timed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from shared import agent
from shared.catalog import load_catalog
from shared.tools import tools_for
from tests.helpers import local_app

pytestmark = pytest.mark.integration


async def test_a_second_call_builds_no_json_schema(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    original = BaseModel.model_json_schema.__func__  # type: ignore[attr-defined]

    def counting(cls: type[BaseModel], *args: Any, **kwargs: Any) -> dict[str, Any]:
        built.append(cls.__name__)
        return original(cls, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(BaseModel, "model_json_schema", classmethod(counting))
    # start cold even when earlier tests of this process already built them (the catalog is shared)
    finance = load_catalog().team("finance")
    for cached in [*tools_for(finance.tools), *finance.operations]:
        cached.__dict__.pop("definition", None)
        cached.__dict__.pop("submit_schema", None)
    agent._prompts.clear()  # and each operation's prompt, which holds them
    async with local_app(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_MODEL_PROVIDER="offline") as app:
        _, key = app.tenant()
        body = {"risk_tolerance": "low", "amount": 10000}
        # given a first call of an operation whose team has tools (definitions built then)
        first = await app.call("finance", "analyze_investment", body, key)
        assert first.status_code == 200, first.text
        assert built, "the first call builds the tool definitions and the submit schema"
        built.clear()
        # when the same and another operation of the team run again
        again = await app.call("finance", "analyze_investment", body, key)
        asked = await app.call("finance", "ask", {"question": "q"}, key)
    # then no JSON Schema was built for either: definitions and output schemas are reused
    assert again.status_code == asked.status_code == 200
    assert [name for name in built if name != "AskOutput"] == [], built
    assert built.count("AskOutput") <= 1  # ask's own submit schema, built on its first use
