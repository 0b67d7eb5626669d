"""Product team: feature prioritisation, user stories and product requirements."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the product team: product managers who have shipped B2B SaaS and consumer products and
know discovery, prioritisation (RICE, MoSCoW, Kano, value/effort), roadmapping and writing specs engineers trust.
You think in problems, outcomes and evidence before solutions and features.
When you answer:
- Lead with the decision or recommendation, then the reasoning.
- Make assumptions explicit (reach, impact, confidence, effort) and show how any score was computed.
- Tie every recommendation to a user problem and a measurable outcome.
- Call out what you would validate first and the cheapest way to validate it.
You do not invent user research, metrics or customer quotes; where evidence is missing you say so and propose
how to get it. You push back on scope creep and vanity metrics, and flag accessibility, privacy and ethical
concerns (dark patterns, manipulative engagement loops) rather than designing them in.
Be crisp: short sections, bullet points, no filler."""


class FeatureCandidate(BaseModel):
    """A feature to prioritise."""

    name: str = Field(min_length=1, max_length=200, description="Short feature name.")
    description: str = Field(min_length=1, max_length=2_000, description="What the feature does and for whom.")
    evidence: str | None = Field(default=None, max_length=2_000, description="Optional evidence of demand.")


class PrioritizeInput(BaseModel):
    """Features to rank against an objective."""

    features: list[FeatureCandidate] = Field(min_length=2, max_length=30, description="The candidate features.")
    objective: str = Field(min_length=1, max_length=1_000, description="The product objective for this period.")
    method: Literal["rice", "moscow", "value_effort"] = Field(default="rice", description="Prioritisation method.")


class RankedFeature(BaseModel):
    """One feature's place in the ranking."""

    name: str = Field(description="The feature name as given.")
    rank: int = Field(ge=1, le=30, description="Position in the ranking, 1 is highest priority.")
    score: float = Field(
        ge=0, description="Score under the chosen method (MoSCoW: 4 must, 3 should, 2 could, 1 won't)."
    )
    rationale: str = Field(description="Why it ranks here, with the method's inputs spelled out.")


class Prioritization(BaseModel):
    """A ranked feature list."""

    ranking: list[RankedFeature] = Field(min_length=1, max_length=30, description="Features, highest priority first.")
    recommendation: str = Field(description="What to build next and why.")
    assumptions: list[str] = Field(max_length=10, description="Estimates used in scoring that should be validated.")


class UserStoriesInput(BaseModel):
    """A feature to break into user stories."""

    feature: str = Field(min_length=1, max_length=5_000, description="The feature or epic to break down.")
    personas: list[str] = Field(
        default_factory=list, max_length=6, description="Optional user types, e.g. 'admin', 'first-time buyer'."
    )
    max_stories: int = Field(default=6, ge=1, le=15, description="Maximum number of stories.")


class UserStory(BaseModel):
    """One INVEST-style user story."""

    title: str = Field(description="Short story title.")
    story: str = Field(description="'As a <user>, I want <capability>, so that <benefit>.'")
    acceptance_criteria: list[str] = Field(
        min_length=1, max_length=8, description="Testable criteria, Given/When/Then where natural."
    )
    size: Literal["xs", "s", "m", "l", "xl"] = Field(description="Relative size estimate.")


class UserStories(BaseModel):
    """A feature broken into user stories."""

    stories: list[UserStory] = Field(min_length=1, max_length=15, description="The user stories, in build order.")
    open_questions: list[str] = Field(max_length=8, description="Questions to resolve with stakeholders.")


class PrdInput(BaseModel):
    """What is known about a product initiative."""

    problem: str = Field(min_length=1, max_length=10_000, description="The user problem and its context.")
    target_users: str = Field(min_length=1, max_length=1_000, description="Who has the problem.")
    constraints: list[str] = Field(default_factory=list, max_length=10, description="Optional known constraints.")


class Prd(BaseModel):
    """A concise product requirements document."""

    problem_statement: str = Field(description="The problem, who has it and why it matters now.")
    goals: list[str] = Field(min_length=1, max_length=6, description="Outcomes with measurable success metrics.")
    non_goals: list[str] = Field(max_length=6, description="What is explicitly out of scope.")
    requirements: list[str] = Field(min_length=1, max_length=15, description="Functional requirements, prioritised.")
    risks: list[str] = Field(max_length=8, description="Product, technical and ethical risks.")


TEAM = Team(
    name="product",
    description="Feature prioritisation, user stories and concise product requirement documents.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="prioritize_features",
            description="Rank candidate features against an objective using RICE, MoSCoW or value/effort.",
            input=PrioritizeInput,
            output=Prioritization,
            instructions=(
                "Score every feature with the chosen method, spelling out the inputs (e.g. reach, impact, "
                "confidence, effort for RICE) in each rationale, rank them, recommend what to build next and list "
                "the estimates that most need validating."
            ),
        ),
        Operation(
            name="write_user_stories",
            description="Break a feature into user stories with acceptance criteria.",
            input=UserStoriesInput,
            output=UserStories,
            instructions=(
                "Split the feature into small, independent, testable stories (INVEST), at most max_stories, each "
                "with acceptance criteria and a size. List open questions rather than guessing requirements."
            ),
        ),
        Operation(
            name="draft_prd",
            description="Draft a concise product requirements document for a problem.",
            input=PrdInput,
            output=Prd,
            instructions=(
                "Write a short PRD: problem statement, measurable goals, non-goals, prioritised requirements and "
                "risks. Stay solution-light where the problem is not yet validated."
            ),
        ),
    ),
)
