"""The team catalog: the 24 contract teams, their models, tools and operation schemas."""

import pytest
from pydantic import ValidationError

from shared.catalog import Catalog, Team, load_catalog
from shared.pricing import price_for

CONTRACT_TEAMS = {
    "marketing",
    "sales",
    "finance",
    "hr",
    "legal",
    "product",
    "customer-service",
    "support",
    "communications",
    "research",
    "design-creative",
    "manufacturing",
    "supply-chain",
    "cloud-services",
    "code-generation",
    "machine-learning-ai",
    "quality-assurance",
    "security",
    "risk-management",
    "strategy",
    "business-development",
    "data-analytics",
    "operations",
    "project-management",
}
ALLOWED_TOOLS = {"calculator", "current_time", "notes", "tickets", "consult_team"}
TICKET_TEAMS = {"support", "customer-service"}
REQUIRED_OPERATIONS = {
    ("marketing", "analyze_campaign"),
    ("finance", "analyze_investment"),
    ("support", "triage_ticket"),
    ("legal", "review_contract"),
    ("code-generation", "generate_code"),
    ("security", "assess_threats"),
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _all_teams() -> list[Team]:
    return list(load_catalog())


def _all_operations() -> list[tuple[str, str]]:
    return [(team.name, op.name) for team in load_catalog() for op in team.operations]


def test_catalog_loads_exactly_the_contract_teams(catalog: Catalog) -> None:
    """Given the team modules, when the catalog loads, then it holds exactly the 24 contract teams."""
    assert set(catalog.names) == CONTRACT_TEAMS
    assert len(catalog) == 24


@pytest.mark.parametrize("team", _all_teams(), ids=lambda t: t.name)
def test_every_team_has_ask_and_two_more_operations(team: Team) -> None:
    """Given a team, when its operations are listed, then ask is one of at least three."""
    names = [op.name for op in team.operations]
    assert "ask" in names
    assert len(names) >= 3
    assert len(names) == len(set(names))


@pytest.mark.parametrize("team", _all_teams(), ids=lambda t: t.name)
def test_every_team_model_has_a_price(team: Team) -> None:
    """Given a team, when its models are priced, then neither the default nor the low-budget model is unknown."""
    price_for(team.model)
    if team.on_low_budget_model is not None:
        price_for(team.on_low_budget_model)


@pytest.mark.parametrize("team", _all_teams(), ids=lambda t: t.name)
def test_every_team_uses_only_allowed_tools(team: Team) -> None:
    """Given a team, when its tool allow-list is read, then every tool name is a known tool."""
    assert set(team.tools) <= ALLOWED_TOOLS
    assert len(team.tools) == len(set(team.tools))


def test_tickets_tool_only_for_support_and_customer_service(catalog: Catalog) -> None:
    """Given the catalog, when we look for the tickets tool, then only support and customer-service have it."""
    with_tickets = {team.name for team in catalog if "tickets" in team.tools}
    assert with_tickets == TICKET_TEAMS


@pytest.mark.parametrize("team", _all_teams(), ids=lambda t: t.name)
def test_every_team_has_a_description_and_a_substantial_role(team: Team) -> None:
    """Given a team, when its prompt is read, then it has a one-line description and a multi-line role."""
    assert team.description and "\n" not in team.description
    assert len(team.role.strip().splitlines()) >= 8


@pytest.mark.parametrize(("team_name", "op_name"), _all_operations())
def test_every_operation_schema_is_a_json_object(catalog: Catalog, team_name: str, op_name: str) -> None:
    """Given an operation, when its schemas are generated, then input and output are JSON object schemas."""
    op = catalog.team(team_name).operation(op_name)
    assert op.description
    assert op.instructions
    for schema in (op.input_schema(), op.output_schema()):
        assert schema["type"] == "object"
        assert schema["properties"]


@pytest.mark.parametrize(("team_name", "op_name"), sorted(REQUIRED_OPERATIONS))
def test_contract_operations_exist(catalog: Catalog, team_name: str, op_name: str) -> None:
    """Given the contract, when the required operations are looked up, then each exists."""
    assert catalog.team(team_name).operation(op_name).name == op_name


def test_analyze_campaign_accepts_target_and_budget(catalog: Catalog) -> None:
    """Given marketing/analyze_campaign, when called with target and budget, then the input validates."""
    op = catalog.team("marketing").operation("analyze_campaign")
    parsed = op.input.model_validate({"target": "x", "budget": 10})
    assert parsed.target == "x"
    assert parsed.budget == 10
    assert set(op.input_schema()["required"]) == {"target", "budget"}


@pytest.mark.parametrize("payload", [{"target": "x"}, {"budget": 10}, {"target": "x", "budget": 0}])
def test_analyze_campaign_rejects_missing_or_non_positive_fields(catalog: Catalog, payload: dict) -> None:
    """Given marketing/analyze_campaign, when target or budget is missing or budget <= 0, then validation fails."""
    op = catalog.team("marketing").operation("analyze_campaign")
    with pytest.raises(ValidationError):
        op.input.model_validate(payload)


def test_analyze_investment_accepts_medium_risk(catalog: Catalog) -> None:
    """Given finance/analyze_investment, when called with a valid risk tolerance and amount, then it validates."""
    op = catalog.team("finance").operation("analyze_investment")
    parsed = op.input.model_validate({"risk_tolerance": "medium", "amount": 100000})
    assert parsed.risk_tolerance == "medium"
    assert parsed.amount == 100000
    assert set(op.input_schema()["required"]) == {"risk_tolerance", "amount"}


@pytest.mark.parametrize(
    "payload",
    [
        {"risk_tolerance": "extreme", "amount": 100000},
        {"risk_tolerance": "low", "amount": 0},
        {"risk_tolerance": "high"},
    ],
)
def test_analyze_investment_rejects_invalid_input(catalog: Catalog, payload: dict) -> None:
    """Given finance/analyze_investment, when risk tolerance is unknown or amount invalid, then validation fails."""
    op = catalog.team("finance").operation("analyze_investment")
    with pytest.raises(ValidationError):
        op.input.model_validate(payload)


def test_load_catalog_only_loads_one_team() -> None:
    """Given MULTIAGENT_TEAM-style selection, when loading only code-generation, then just that team is loaded."""
    only = load_catalog(only="code-generation")
    assert only.names == ["code-generation"]
    assert only.team("code-generation").operation("generate_code").name == "generate_code"


def test_an_unknown_tool_name_fails_when_the_team_is_defined() -> None:
    """Given a team listing a tool that does not exist, when it is defined, then it fails naming the known tools."""
    from shared.catalog import ASK, Operation
    from shared.errors import ConfigurationError

    extra = Operation(name="other", description="x", input=ASK.input, output=ASK.output)
    with pytest.raises(ConfigurationError, match="unknown tools \\['calculater'\\]; known: calculator"):
        Team(name="typo", description="x", role="x", model="claude-sonnet-4-5", tools=("calculater",),
             operations=(extra, Operation(name="third", description="x", input=ASK.input, output=ASK.output)))
