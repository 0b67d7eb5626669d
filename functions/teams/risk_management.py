"""Risk-management team: risk assessment, mitigation planning and scenario analysis."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the risk-management team: enterprise-risk, operational-risk and business-continuity specialists
who apply ISO 31000, COSO ERM and quantitative methods (expected loss, scenario analysis, Monte Carlo).
You help people see what could go wrong, how likely and how bad it would be, and what to do about it.
When you answer:
- Use a consistent 1-5 likelihood and 1-5 impact scale; score = likelihood x impact (1-25) and show it.
- Separate inherent risk from residual risk after controls, and name an owner for each risk.
- State assumptions and data sources; give ranges for quantified impacts and show the arithmetic.
- Prefer a few well-analysed material risks over long generic lists; include low-probability, high-impact ones.
- Match recommendations to the stated risk appetite: avoid, reduce, transfer or accept, with the cost.
You are candid: you do not downplay risks to please stakeholders or present estimates as certainties.
You do not provide legal, actuarial or investment advice; recommend specialists where a decision depends on it,
and you refuse to help conceal risks from regulators, auditors, insurers or boards.
Write clearly for executives: short, structured, decision-oriented."""

Appetite = Literal["averse", "cautious", "balanced", "open"]
Rating = Literal["low", "medium", "high", "critical"]


class RiskAssessmentInput(BaseModel):
    """An initiative or area to assess."""

    initiative: str = Field(
        min_length=1, max_length=20_000, description="The project, decision or business area to assess."
    )
    context: str | None = Field(
        default=None, max_length=10_000, description="Optional context: industry, size, existing controls."
    )
    risk_appetite: Appetite = Field(default="balanced", description="The organisation's appetite for risk.")
    max_risks: int = Field(default=8, ge=1, le=25, description="Maximum number of risks to list.")


class RiskItem(BaseModel):
    """One risk in the register."""

    title: str = Field(description="The risk, phrased as cause, event and consequence.")
    category: Literal["strategic", "operational", "financial", "compliance", "reputational", "technology", "safety"] = (
        Field(description="Risk category.")
    )
    likelihood: int = Field(ge=1, le=5, description="Likelihood, 1 (rare) to 5 (almost certain).")
    impact: int = Field(ge=1, le=5, description="Impact, 1 (negligible) to 5 (severe).")
    score: int = Field(ge=1, le=25, description="Likelihood x impact.")
    mitigation: str = Field(description="Recommended response and controls.")
    owner: str = Field(description="Suggested owner role.")


class RiskAssessment(BaseModel):
    """A risk register for an initiative."""

    summary: str = Field(description="The overall risk picture and the key decision points.")
    overall_rating: Rating = Field(description="Overall risk rating relative to the appetite.")
    risks: list[RiskItem] = Field(min_length=1, max_length=25, description="Risks, highest score first.")
    assumptions: list[str] = Field(max_length=10, description="Assumptions behind the ratings.")


class MitigationInput(BaseModel):
    """A single risk to plan the response for."""

    risk: str = Field(min_length=1, max_length=5_000, description="The risk to treat.")
    current_controls: list[str] = Field(
        default_factory=list, max_length=15, description="Optional controls already in place."
    )
    potential_loss: float | None = Field(
        default=None, ge=0, le=1_000_000_000_000, description="Optional estimated loss if it occurs, in USD."
    )
    annual_probability_percent: float | None = Field(
        default=None, ge=0, le=100, description="Optional estimated annual probability, in percent."
    )


class MitigationOption(BaseModel):
    """One way to treat the risk."""

    strategy: Literal["avoid", "reduce", "transfer", "accept"] = Field(description="The treatment strategy.")
    actions: list[str] = Field(min_length=1, max_length=6, description="Concrete actions.")
    estimated_cost: str = Field(description="Rough cost or effort, with units.")
    residual_rating: Rating = Field(description="Residual risk after this treatment.")


class MitigationPlan(BaseModel):
    """Treatment options for a risk."""

    expected_annual_loss: float = Field(
        ge=0, description="Probability x loss in USD, or 0 when not quantifiable from the inputs."
    )
    options: list[MitigationOption] = Field(min_length=1, max_length=4, description="Treatment options.")
    recommended_strategy: Literal["avoid", "reduce", "transfer", "accept"] = Field(
        description="The recommended option."
    )
    rationale: str = Field(description="Why that option, comparing cost with risk reduction.")
    key_risk_indicators: list[str] = Field(max_length=6, description="Indicators that warn the risk is rising.")


class ScenarioInput(BaseModel):
    """A decision or exposure to stress-test with scenarios."""

    subject: str = Field(min_length=1, max_length=10_000, description="What to stress-test, e.g. a plan or a budget.")
    drivers: list[str] = Field(
        min_length=1, max_length=10, description="Key uncertain drivers, e.g. 'FX rate', 'demand', 'interest rates'."
    )


class Scenario(BaseModel):
    """One scenario."""

    name: str = Field(description="Scenario name, e.g. 'severe downturn'.")
    probability_percent: float = Field(ge=0, le=100, description="Subjective probability, in percent.")
    assumptions: list[str] = Field(min_length=1, max_length=6, description="Values of the drivers in this scenario.")
    impact: str = Field(description="Consequences, quantified where possible.")


class ScenarioAnalysis(BaseModel):
    """Scenarios with early warnings and responses."""

    scenarios: list[Scenario] = Field(min_length=2, max_length=6, description="Scenarios, base case first.")
    early_warning_signs: list[str] = Field(max_length=8, description="Signals that a scenario is unfolding.")
    contingency_actions: list[str] = Field(min_length=1, max_length=8, description="Pre-planned responses.")


TEAM = Team(
    name="risk-management",
    description="Risk registers, mitigation planning and scenario analysis against a risk appetite.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="assess_risk",
            description="Build a scored risk register for an initiative against the risk appetite.",
            input=RiskAssessmentInput,
            output=RiskAssessment,
            instructions=(
                "Identify up to max_risks material risks across categories, score likelihood and impact on 1-5 "
                "scales with score = likelihood x impact, give a mitigation and owner for each, sort by score, "
                "rate the overall risk relative to the appetite and state assumptions."
            ),
        ),
        Operation(
            name="plan_mitigation",
            description="Compare treatment options for a single risk and recommend one.",
            input=MitigationInput,
            output=MitigationPlan,
            instructions=(
                "Compute expected annual loss = probability x loss when both are given (else 0), then compare "
                "avoid, reduce, transfer and accept options with actions, costs and residual risk, recommend one "
                "with its cost-benefit rationale and suggest key risk indicators."
            ),
        ),
        Operation(
            name="analyze_scenarios",
            description="Stress-test a plan with base, downside and upside scenarios.",
            input=ScenarioInput,
            output=ScenarioAnalysis,
            instructions=(
                "Build a base case plus contrasting downside and upside scenarios (including one severe but "
                "plausible one) by varying the drivers, with probabilities summing to about 100 and quantified "
                "impacts. Give early warning signs and contingency actions."
            ),
        ),
    ),
)
