"""Marketing team: campaign analysis, copywriting and audience personas."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the marketing team: senior strategists who have planned and measured campaigns across paid search,
paid social, email, content, events and partnerships for B2B and B2C brands.
You reason from the audience and the objective to the channel mix, never the other way round.
When you answer:
- Start with a one-paragraph recommendation, then the supporting detail.
- State every assumption you make (audience size, CPM/CPC, conversion rates) and label estimates as estimates.
- Show the arithmetic behind any budget split, reach or CAC figure so the reader can check it.
- Name the KPIs that would prove or disprove the plan and how to measure them.
You use industry benchmark ranges rather than inventing precise figures, and say when data is missing.
You refuse to write deceptive or misleading claims, fake reviews or testimonials, astroturfing, dark patterns,
or copy that targets people on protected characteristics or exploits vulnerable groups (e.g. minors, addiction).
You flag when a claim would need substantiation or legal review (health, financial, environmental claims).
Be concise, concrete and practical; prefer a small number of well-argued actions over long lists."""

Channel = Literal["search", "social", "display", "email", "content", "video", "events", "partnerships", "other"]


class CampaignInput(BaseModel):
    """What to analyse: the campaign's target audience and its budget."""

    target: str = Field(min_length=1, max_length=500, description="The target audience or market of the campaign.")
    budget: float = Field(gt=0, le=1_000_000_000, description="Total campaign budget in USD; must be positive.")
    goal: str | None = Field(
        default=None, max_length=500, description="Optional business goal, e.g. '500 qualified demo requests'."
    )
    duration_weeks: int | None = Field(default=None, ge=1, le=104, description="Optional campaign length in weeks.")
    channels: list[Channel] = Field(
        default_factory=list, max_length=9, description="Optional channels to consider; empty means recommend freely."
    )


class ChannelAllocation(BaseModel):
    """One channel's share of the budget."""

    channel: Channel = Field(description="The marketing channel.")
    share_percent: float = Field(ge=0, le=100, description="Share of the total budget, in percent.")
    amount: float = Field(ge=0, description="Budget allocated to this channel, in USD.")
    rationale: str = Field(description="Why this channel and this share suit the target audience.")


class CampaignAnalysis(BaseModel):
    """A channel plan with KPIs and risks for the campaign."""

    summary: str = Field(description="One-paragraph recommendation for the campaign.")
    allocations: list[ChannelAllocation] = Field(
        min_length=1, max_length=9, description="Recommended budget split by channel."
    )
    kpis: list[str] = Field(min_length=1, max_length=10, description="KPIs to track, each with a target value.")
    assumptions: list[str] = Field(max_length=10, description="Assumptions behind the plan (benchmarks, rates).")
    risks: list[str] = Field(max_length=10, description="Main risks to the campaign and how to mitigate them.")


class CopyInput(BaseModel):
    """A brief for marketing copy."""

    product: str = Field(min_length=1, max_length=2_000, description="The product or offer the copy promotes.")
    audience: str = Field(min_length=1, max_length=500, description="Who the copy is written for.")
    format: Literal["ad", "email", "landing_page", "social_post", "tagline"] = Field(
        description="The kind of copy to write."
    )
    tone: Literal["professional", "friendly", "playful", "bold", "empathetic"] = Field(
        default="professional", description="The voice of the copy."
    )
    key_messages: list[str] = Field(
        default_factory=list, max_length=10, description="Optional points the copy must convey."
    )
    max_words: int = Field(default=150, ge=5, le=2_000, description="Upper bound on the length of the body copy.")


class CopyOutput(BaseModel):
    """Ready-to-review copy with alternatives."""

    headline: str = Field(description="The headline or subject line.")
    body: str = Field(description="The main copy, within the word limit.")
    call_to_action: str = Field(description="The call to action.")
    variants: list[str] = Field(max_length=5, description="Alternative headlines for A/B testing.")
    claims_to_verify: list[str] = Field(max_length=10, description="Claims in the copy that need substantiation.")


class PersonaInput(BaseModel):
    """A product and market to build buyer personas for."""

    product: str = Field(min_length=1, max_length=2_000, description="The product or service.")
    market: str = Field(
        min_length=1, max_length=500, description="The market or segment, e.g. 'EU mid-size retailers'."
    )
    count: int = Field(default=3, ge=1, le=6, description="How many personas to create.")


class Persona(BaseModel):
    """One buyer persona."""

    name: str = Field(description="A memorable label for the persona, e.g. 'Ops-lead Olivia'.")
    role: str = Field(description="Job title or life situation.")
    goals: list[str] = Field(min_length=1, max_length=5, description="What the persona is trying to achieve.")
    pain_points: list[str] = Field(min_length=1, max_length=5, description="Problems the product can address.")
    preferred_channels: list[Channel] = Field(min_length=1, max_length=5, description="Where to reach them.")
    message: str = Field(description="The core message that would resonate with this persona.")


class PersonaOutput(BaseModel):
    """Buyer personas for a product."""

    personas: list[Persona] = Field(min_length=1, max_length=6, description="The personas.")
    research_gaps: list[str] = Field(max_length=10, description="What to validate with real customer research.")


TEAM = Team(
    name="marketing",
    description="Campaign planning, channel mix, copywriting and buyer personas.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="analyze_campaign",
            description="Analyse a campaign's target and budget and recommend a channel mix with KPIs.",
            input=CampaignInput,
            output=CampaignAnalysis,
            instructions=(
                "Recommend how to spend the budget to reach the target audience. Split the budget across channels "
                "so that the amounts sum to the budget and the shares sum to 100. Give KPIs with target values, "
                "state the benchmark assumptions you used, and list the main risks with mitigations."
            ),
        ),
        Operation(
            name="write_copy",
            description="Write marketing copy (ad, email, landing page, social post or tagline) from a brief.",
            input=CopyInput,
            output=CopyOutput,
            instructions=(
                "Write copy in the requested format and tone for the audience, within max_words. Convey every key "
                "message, end with a clear call to action, offer headline variants for testing, and list any claim "
                "that needs substantiation before publishing. Never invent statistics or testimonials."
            ),
        ),
        Operation(
            name="create_personas",
            description="Create buyer personas for a product in a given market.",
            input=PersonaInput,
            output=PersonaOutput,
            instructions=(
                "Create the requested number of distinct, realistic buyer personas. Base them on the role and "
                "situation, never on protected characteristics. List what must be validated with real research."
            ),
        ),
    ),
)
