"""Design and creative team: design briefs, design critiques and creative concepts."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the design and creative team: brand designers, UX/UI designers, art directors and copywriters
who work across identity, product interfaces, campaigns, packaging and editorial.
You know visual hierarchy, typography, colour, layout grids, interaction patterns and WCAG accessibility.
When you answer:
- Start from the audience and the goal, then explain how each design choice serves them.
- Give specific, actionable feedback (what, where, why, how to fix), not taste statements.
- State assumptions about brand, medium and constraints, and offer options with trade-offs when unsure.
- Always consider accessibility (contrast ratios, text size, motion, alt text) and inclusive representation.
You respect intellectual property: you do not copy or closely imitate protected logos, characters or living
artists' distinctive styles for commercial use, and you flag trademark or licensing risks.
You refuse deceptive design (dark patterns, disguised ads, fake urgency) and imagery meant to demean groups.
Be encouraging but honest; describe visuals in words precise enough for someone to produce them."""

Severity = Literal["low", "medium", "high"]


class BriefInput(BaseModel):
    """What the client wants designed."""

    project: str = Field(min_length=1, max_length=5_000, description="The project and deliverable, e.g. 'app icon'.")
    audience: str = Field(min_length=1, max_length=1_000, description="Who the design is for.")
    goals: list[str] = Field(min_length=1, max_length=8, description="What the design must achieve.")
    brand_notes: str | None = Field(default=None, max_length=5_000, description="Optional brand guidelines or values.")


class DesignBrief(BaseModel):
    """A creative brief a designer can work from."""

    objective: str = Field(description="The single-minded objective of the work.")
    audience_insight: str = Field(description="The insight about the audience the design builds on.")
    deliverables: list[str] = Field(min_length=1, max_length=10, description="Concrete deliverables with formats.")
    tone_words: list[str] = Field(min_length=1, max_length=6, description="Adjectives describing the desired feel.")
    mandatories: list[str] = Field(max_length=10, description="Must-haves: logo use, legal lines, accessibility.")
    success_criteria: list[str] = Field(min_length=1, max_length=6, description="How the work will be judged.")


class CritiqueInput(BaseModel):
    """A design to critique, described in words or markup."""

    design_description: str = Field(
        min_length=1, max_length=20_000, description="A description of the design, its layout, colours and copy."
    )
    design_type: Literal["web", "mobile", "print", "brand", "presentation", "packaging", "other"] = Field(
        default="web", description="What kind of design it is."
    )
    goals: list[str] = Field(default_factory=list, max_length=8, description="Optional goals the design should meet.")


class DesignIssue(BaseModel):
    """One issue with the design."""

    area: str = Field(description="Where in the design, e.g. 'hero section', 'primary button'.")
    issue: str = Field(description="What the problem is and why it matters.")
    severity: Severity = Field(description="How much it hurts the design's goals.")
    suggestion: str = Field(description="A concrete fix.")


class DesignCritique(BaseModel):
    """A structured design critique."""

    overall_score: int = Field(ge=1, le=10, description="Overall quality against the goals, 1 to 10.")
    strengths: list[str] = Field(min_length=1, max_length=6, description="What works well.")
    issues: list[DesignIssue] = Field(max_length=15, description="Issues, most severe first.")
    accessibility_notes: list[str] = Field(max_length=8, description="Accessibility checks and concerns.")


class ConceptInput(BaseModel):
    """A brief to generate creative concepts for."""

    brief: str = Field(min_length=1, max_length=10_000, description="The creative brief or challenge.")
    count: int = Field(default=3, ge=1, le=8, description="How many distinct concepts to generate.")
    medium: str | None = Field(default=None, max_length=200, description="Optional medium, e.g. 'outdoor poster'.")


class Concept(BaseModel):
    """One creative concept."""

    name: str = Field(description="A working title for the concept.")
    idea: str = Field(description="The core idea in one or two sentences.")
    execution: str = Field(description="How it would look and read in the medium, described precisely.")
    rationale: str = Field(description="Why it answers the brief.")


class Concepts(BaseModel):
    """A set of distinct creative concepts."""

    concepts: list[Concept] = Field(min_length=1, max_length=8, description="The concepts, boldest last.")
    recommendation: str = Field(description="Which concept to develop and why.")


TEAM = Team(
    name="design-creative",
    description="Creative briefs, actionable design critiques and creative concepts.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="create_design_brief",
            description="Turn a client request into a clear creative brief.",
            input=BriefInput,
            output=DesignBrief,
            instructions=(
                "Write a focused brief: one objective, an audience insight, concrete deliverables with formats, "
                "tone words, mandatories (including accessibility) and success criteria."
            ),
        ),
        Operation(
            name="critique_design",
            description="Critique a described design with prioritised, actionable issues.",
            input=CritiqueInput,
            output=DesignCritique,
            instructions=(
                "Assess hierarchy, layout, typography, colour, copy and accessibility against the goals. Name "
                "strengths, list issues with area, severity and a concrete fix, and score the design 1 to 10."
            ),
        ),
        Operation(
            name="generate_concepts",
            description="Generate distinct creative concepts for a brief and recommend one.",
            input=ConceptInput,
            output=Concepts,
            instructions=(
                "Generate count genuinely different concepts (not variations of one), each with an idea, a precise "
                "description of its execution and a rationale. Avoid imitating protected work. Recommend one."
            ),
        ),
    ),
)
