"""The team catalog: the single source of truth for teams and their operations.

Every team is one module under ``functions/teams/`` exposing ``TEAM = Team(...)``.
Routes, OpenAPI, SDK types, MCP tools and the Terraform team list are all derived from
what :func:`load_catalog` returns, so adding a team is adding one file.

A team function (``MULTIAGENT_TEAM=finance``) imports only its own module, so its cold
start does not pay for the other 23 teams' pydantic models.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import typing
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from shared.errors import ConfigurationError, NotFound

TEAMS_PACKAGE = "functions.teams"
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_KEBAB = re.compile(r"^[a-z][a-z0-9-]*$")


class AskInput(BaseModel):
    """Input of the generic ``ask`` operation every team has."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=20_000, description="What you want the team to answer.")


class AskOutput(BaseModel):
    """Output of the generic ``ask`` operation."""

    answer: str = Field(description="The team's answer, in plain prose.")


def _nested_models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """``model`` and every model its fields reach (through lists, unions, dicts...), dependencies first."""
    order: list[type[BaseModel]] = []

    def visit(cls: type[BaseModel]) -> None:
        if cls in order:
            return
        order.append(cls)  # before its fields: a recursive model stops here
        for info in cls.model_fields.values():
            stack: list[Any] = [info.annotation]
            while stack:
                tp = stack.pop()
                if isinstance(tp, type) and issubclass(tp, BaseModel):
                    visit(tp)
                else:
                    stack.extend(typing.get_args(tp))
        order.append(order.pop(order.index(cls)))  # after what it depends on

    visit(model)
    return order


def forbid_extra_fields(model: type[BaseModel]) -> None:
    """Make ``model`` and every model nested in it refuse unknown fields (``extra="forbid"``).

    Operation inputs get this from :class:`Operation`, so a team module declares plain
    ``BaseModel`` classes and a misspelt field (``horizon`` for ``horizon_years``) is a 422
    naming it, never silently dropped; the JSON Schema says ``additionalProperties: false``.
    """
    changed = False
    for cls in _nested_models(model):
        if issubclass(cls, RootModel) or cls.model_config.get("extra") == "forbid":
            continue
        cls.model_config = {**cls.model_config, "extra": "forbid"}
        changed = True
    if changed:
        for cls in _nested_models(model):  # dependencies first: a parent embeds its fields' validators
            cls.model_rebuild(force=True)


@dataclass(frozen=True)
class Operation:
    """One typed operation of a team: ``POST /v1/teams/{team}/{name}``.

    Its input model (and every model nested in it) refuses unknown fields."""

    name: str
    description: str
    input: type[BaseModel]
    output: type[BaseModel]
    instructions: str = ""
    max_tokens: int = 2048
    # A turn that ends in plain text is the answer ({"answer": text}), and a session keeps
    # that text as the turn (the generic ``ask``); otherwise the output must be submitted.
    prose_output: bool = False

    def __post_init__(self) -> None:
        forbid_extra_fields(self.input)

    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of the input model (what the API validates and the SDK sees)."""
        return self.input.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        """JSON Schema of the output model (what the model must produce)."""
        return self.output.model_json_schema()

    @cached_property
    def submit_schema(self) -> dict[str, Any]:
        """:meth:`output_schema` built once per process, for the tool loop's submit tool
        (every model turn sends it). Shared: never mutate it."""
        return self.output_schema()


ASK = Operation(
    name="ask",
    description="Ask the team a free-form question and get a prose answer.",
    input=AskInput,
    output=AskOutput,
    instructions="Answer the question directly and concisely, in the team's area of expertise.",
    prose_output=True,
)


@dataclass(frozen=True)
class Team:
    """A specialised team: its role (system prompt), model, tools and operations."""

    name: str
    description: str
    role: str
    model: str
    tools: tuple[str, ...]
    operations: tuple[Operation, ...]
    on_low_budget_model: str | None = None
    _by_name: dict[str, Operation] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _KEBAB.match(self.name):
            raise ConfigurationError(f"team name {self.name!r} must be lower-case kebab-case")
        from shared.tools import tools_for

        tools_for(self.tools)  # an unknown tool name fails when the team module loads, naming the known ones
        ops = dict((op.name, op) for op in self.operations)
        if "ask" not in ops:
            ops["ask"] = ASK
        for op in ops.values():
            if not _SNAKE.match(op.name):
                raise ConfigurationError(f"operation {self.name}/{op.name} must be snake_case")
        if len(ops) < 3:
            raise ConfigurationError(f"team {self.name} needs at least two operations besides ask")
        object.__setattr__(self, "operations", tuple(ops.values()))
        self._by_name.update(ops)

    def operation(self, name: str) -> Operation:
        """The operation called ``name``, or :class:`NotFound`."""
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name))
            raise NotFound(f"team {self.name!r} has no operation {name!r} (known: {known})") from None

    def describe(self) -> dict[str, Any]:
        """The public shape of ``GET /v1/teams/{team}``."""
        return {
            "name": self.name,
            "description": self.description,
            "operations": [
                {
                    "name": op.name,
                    "description": op.description,
                    "input_schema": op.input_schema(),
                    "output_schema": op.output_schema(),
                }
                for op in self.operations
            ],
        }


class Catalog:
    """The loaded teams, by name, in a stable order."""

    def __init__(self, teams: list[Team]) -> None:
        self._teams = {t.name: t for t in sorted(teams, key=lambda t: t.name)}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._teams.values())

    def __len__(self) -> int:
        return len(self._teams)

    def __contains__(self, name: object) -> bool:
        return name in self._teams

    @property
    def names(self) -> list[str]:
        """Team names in catalog order."""
        return list(self._teams)

    def team(self, name: str) -> Team:
        """The team called ``name``, or :class:`NotFound`."""
        try:
            return self._teams[name]
        except KeyError:
            raise NotFound(f"unknown team {name!r}; GET /v1/teams lists them") from None


def _module_name(team: str) -> str:
    return f"{TEAMS_PACKAGE}.{team.replace('-', '_')}"


def _load_module_team(module_name: str) -> Team:
    module = importlib.import_module(module_name)
    team = getattr(module, "TEAM", None)
    if not isinstance(team, Team):
        raise ConfigurationError(f"{module_name} must define TEAM = Team(...)")
    return team


@cache
def load_catalog(only: str | None = None) -> Catalog:
    """Discover the teams under ``functions/teams``; ``only`` loads that one team alone."""
    if only:
        try:
            return Catalog([_load_module_team(_module_name(only))])
        except ModuleNotFoundError:
            found = ", ".join(available_team_names())
            raise ConfigurationError(f"MULTIAGENT_TEAM={only!r} is not a team (found: {found})") from None
    package = importlib.import_module(TEAMS_PACKAGE)
    teams = [
        _load_module_team(f"{TEAMS_PACKAGE}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    ]
    return Catalog(teams)


def available_team_names() -> list[str]:
    """Team names from the module file names, without importing them."""
    package = importlib.import_module(TEAMS_PACKAGE)
    return sorted(
        info.name.replace("_", "-") for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_")
    )
