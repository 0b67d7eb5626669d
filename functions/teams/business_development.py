"""Business-development team: partnership evaluation, opportunity sizing and proposals."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the business-development team: partnership, alliances and corporate-development managers who
find, evaluate and structure growth deals: channel and technology partnerships, distribution, licensing,
joint ventures and new markets.
When you answer:
- Start with the recommendation (pursue, explore, decline) and the main reasons.
- Quantify the opportunity where possible (TAM/SAM/SOM, revenue share, payback) and show the calculation.
- State assumptions about the partner and market, and separate given facts from general knowledge.
- Describe deal structures with their incentives, risks and exit terms, and the next concrete step.
- Consider strategic fit, capability gaps, channel conflict and the cost of management attention.
You do not invent facts about named companies or people; you mark anything to be verified in diligence.
You refuse to help with bribery or kickbacks, anti-competitive agreements, misuse of confidential
information, or misrepresenting capabilities to partners, and flag when a deal needs legal review.
Write concisely for a decision-maker who has five minutes."""

Recommendation = Literal["pursue", "explore", "decline"]
Level = Literal["low", "medium", "high"]


class PartnershipInput(BaseModel):
    """A potential partnership to evaluate."""

    partner: str = Field(min_length=1, max_length=2_000, description="The potential partner and what they do.")
    proposal: str = Field(min_length=1, max_length=10_000, description="The proposed partnership or deal.")
    our_goals: list[str] = Field(
        min_length=1, max_length=8, description="What we want from partnerships, e.g. 'enter DACH market'."
    )


class PartnershipEvaluation(BaseModel):
    """An evaluation of a partnership."""

    recommendation: Recommendation = Field(description="Whether to pursue, explore further or decline.")
    fit_score: int = Field(ge=0, le=100, description="Strategic fit, 0 to 100.")
    value_drivers: list[str] = Field(min_length=1, max_length=6, description="How the deal creates value for us.")
    risks: list[str] = Field(min_length=1, max_length=8, description="Risks, including channel conflict and lock-in.")
    deal_structures: list[str] = Field(min_length=1, max_length=4, description="Possible structures and their terms.")
    diligence_questions: list[str] = Field(max_length=10, description="Questions to answer before committing.")


class OpportunityInput(BaseModel):
    """Our capabilities and where to look for growth."""

    company: str = Field(min_length=1, max_length=5_000, description="Our company, products and capabilities.")
    markets: list[str] = Field(
        default_factory=list, max_length=10, description="Optional markets, segments or regions to consider."
    )
    max_opportunities: int = Field(default=5, ge=1, le=10, description="Maximum number of opportunities.")


class Opportunity(BaseModel):
    """One growth opportunity."""

    name: str = Field(description="Short name of the opportunity.")
    description: str = Field(description="What it is and how we would capture it.")
    market_size_estimate: str = Field(description="Rough size with the arithmetic, labelled as an estimate.")
    fit: Level = Field(description="Fit with our capabilities.")
    effort: Level = Field(description="Effort and investment required.")


class Opportunities(BaseModel):
    """Prioritised growth opportunities."""

    opportunities: list[Opportunity] = Field(min_length=1, max_length=10, description="Opportunities, best first.")
    next_steps: list[str] = Field(min_length=1, max_length=6, description="How to validate the top opportunities.")


class ProposalInput(BaseModel):
    """A proposal to write to a prospective partner or client."""

    recipient: str = Field(min_length=1, max_length=2_000, description="Who the proposal is for and their needs.")
    offer: str = Field(min_length=1, max_length=10_000, description="What we propose, including commercial terms.")
    tone: Literal["formal", "conversational"] = Field(default="formal", description="Tone of the proposal.")


class ProposalSection(BaseModel):
    """One section of the proposal."""

    heading: str = Field(description="Section heading.")
    content: str = Field(description="Section text.")


class Proposal(BaseModel):
    """A partnership or business proposal."""

    title: str = Field(description="Proposal title.")
    executive_summary: str = Field(description="The proposal in one paragraph.")
    sections: list[ProposalSection] = Field(min_length=2, max_length=8, description="The body sections.")
    call_to_action: str = Field(description="The next step we ask the recipient to take.")


TEAM = Team(
    name="business-development",
    description="Partnership evaluation, growth-opportunity sizing and business proposals.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="evaluate_partnership",
            description="Evaluate a proposed partnership and recommend whether to pursue it.",
            input=PartnershipInput,
            output=PartnershipEvaluation,
            instructions=(
                "Assess strategic fit against our goals, the value drivers, risks (channel conflict, dependency, "
                "reputational), possible deal structures and diligence questions. Recommend pursue, explore or "
                "decline with a fit score consistent with the analysis."
            ),
        ),
        Operation(
            name="identify_opportunities",
            description="Identify and size growth opportunities that fit our capabilities.",
            input=OpportunityInput,
            output=Opportunities,
            instructions=(
                "Propose up to max_opportunities opportunities (new segments, regions, partnerships, products) that "
                "build on our capabilities, with rough top-down sizes showing the arithmetic, fit and effort. Rank "
                "them and give next steps to validate the best ones."
            ),
        ),
        Operation(
            name="draft_proposal",
            description="Draft a business or partnership proposal for a recipient.",
            input=ProposalInput,
            output=Proposal,
            instructions=(
                "Write a persuasive, accurate proposal framed around the recipient's needs: executive summary, "
                "sections covering the problem, offer, benefits, terms and next steps, and a clear call to action. "
                "Do not overstate capabilities or invent references."
            ),
        ),
    ),
)
