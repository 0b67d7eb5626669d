"""Strategy team: SWOT analysis, option evaluation and competitive analysis."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the strategy team: former management consultants and corporate-strategy leads who use
frameworks (SWOT, Porter's five forces, jobs-to-be-done, value chains, scenario planning) as tools, not answers.
You help leaders make choices: where to play, how to win, what to stop doing.
When you answer:
- Lead with the recommendation and the two or three reasons that matter most (pyramid principle).
- Make the key assumptions explicit and say which would change the recommendation if wrong.
- Quantify where you can (market size, share, margins, payback) and show the arithmetic; label estimates.
- Present real alternatives with trade-offs, including doing nothing, and name the risks of the chosen path.
- Separate what the user told you from general market knowledge, which may be out of date.
You are intellectually honest: you challenge weak premises, do not invent market data or competitor facts,
and say when more research is needed before deciding.
You refuse to help with collusion, price-fixing, bid-rigging, obtaining competitors' confidential information
improperly, or misleading investors or regulators. Write crisply for senior executives."""


class SwotInput(BaseModel):
    """An organisation or product to analyse."""

    subject: str = Field(min_length=1, max_length=1_000, description="The organisation, unit or product.")
    context: str = Field(
        min_length=1, max_length=20_000, description="What is known: market, position, results, plans."
    )
    objective: str | None = Field(default=None, max_length=1_000, description="Optional strategic question to inform.")


class SwotAnalysis(BaseModel):
    """A SWOT analysis with implications."""

    strengths: list[str] = Field(min_length=1, max_length=8, description="Internal strengths.")
    weaknesses: list[str] = Field(min_length=1, max_length=8, description="Internal weaknesses.")
    opportunities: list[str] = Field(min_length=1, max_length=8, description="External opportunities.")
    threats: list[str] = Field(min_length=1, max_length=8, description="External threats.")
    implications: list[str] = Field(
        min_length=1, max_length=6, description="Strategic moves that combine the quadrants (SO, WO, ST, WT)."
    )


class OptionsInput(BaseModel):
    """A decision with options to evaluate."""

    decision: str = Field(min_length=1, max_length=5_000, description="The decision to make and its context.")
    options: list[str] = Field(min_length=2, max_length=8, description="The options under consideration.")
    criteria: list[str] = Field(
        default_factory=list, max_length=10, description="Optional criteria, e.g. 'time to revenue', 'capex', 'risk'."
    )


class OptionEvaluation(BaseModel):
    """One option's evaluation."""

    option: str = Field(description="The option as given.")
    score: float = Field(ge=0, le=10, description="Weighted score against the criteria, 0 to 10.")
    pros: list[str] = Field(min_length=1, max_length=6, description="Advantages.")
    cons: list[str] = Field(min_length=1, max_length=6, description="Disadvantages and risks.")


class OptionsDecision(BaseModel):
    """A recommendation among options."""

    criteria_weights: list[str] = Field(min_length=1, max_length=10, description="Each criterion with its weight.")
    evaluations: list[OptionEvaluation] = Field(min_length=2, max_length=8, description="One entry per option.")
    recommendation: str = Field(description="The recommended option and the reasons that matter most.")
    deciding_assumptions: list[str] = Field(
        min_length=1, max_length=6, description="Assumptions that would change the recommendation if wrong."
    )


class CompetitionInput(BaseModel):
    """A market and company to analyse the competition for."""

    company: str = Field(min_length=1, max_length=5_000, description="Our company and offering.")
    market: str = Field(min_length=1, max_length=1_000, description="The market or segment.")
    competitors: list[str] = Field(
        default_factory=list, max_length=12, description="Optional known competitors, with any facts known."
    )


class CompetitorProfile(BaseModel):
    """One competitor's profile."""

    name: str = Field(description="Competitor name or archetype.")
    positioning: str = Field(description="How they position and for whom.")
    strengths: list[str] = Field(min_length=1, max_length=5, description="Where they are strong.")
    weaknesses: list[str] = Field(min_length=1, max_length=5, description="Where they are weak.")
    threat_level: Literal["low", "medium", "high"] = Field(description="Threat to our position.")


class CompetitiveAnalysis(BaseModel):
    """A competitive landscape with recommendations."""

    market_dynamics: str = Field(description="Forces shaping the market (five forces in brief).")
    competitors: list[CompetitorProfile] = Field(min_length=1, max_length=12, description="Competitor profiles.")
    differentiation: list[str] = Field(min_length=1, max_length=6, description="Where we can win and why.")
    recommendations: list[str] = Field(min_length=1, max_length=6, description="Strategic recommendations.")
    facts_to_verify: list[str] = Field(max_length=10, description="Claims from general knowledge to verify.")


TEAM = Team(
    name="strategy",
    description="SWOT analysis, option evaluation and competitive strategy for leadership decisions.",
    role=ROLE,
    model="claude-opus-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="analyze_swot",
            description="Produce a SWOT analysis with the strategic moves it implies.",
            input=SwotInput,
            output=SwotAnalysis,
            instructions=(
                "Write specific, evidence-based points in each quadrant (internal vs external kept separate), "
                "then derive strategic implications that combine quadrants and address the objective if given."
            ),
        ),
        Operation(
            name="evaluate_options",
            description="Evaluate strategic options against weighted criteria and recommend one.",
            input=OptionsInput,
            output=OptionsDecision,
            instructions=(
                "Set weighted criteria (use the given ones, adding any essential ones), score each option 0-10, "
                "list pros and cons, recommend an option with the reasons that matter most, and name the "
                "assumptions that would flip the decision."
            ),
        ),
        Operation(
            name="analyze_competition",
            description="Map the competitive landscape and recommend where to differentiate.",
            input=CompetitionInput,
            output=CompetitiveAnalysis,
            instructions=(
                "Summarise market dynamics, profile the competitors (known ones plus relevant archetypes), identify "
                "where we can win, and recommend moves. List facts drawn from general knowledge that need "
                "verification; never invent specific figures about named companies."
            ),
        ),
    ),
)
