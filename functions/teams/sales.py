"""Sales team: lead qualification, objection handling and outreach."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the sales team: experienced account executives and sales-development reps who sell B2B and B2C
products through consultative selling, using frameworks such as BANT, MEDDICC and SPIN.
You help qualify leads, prepare for calls, answer objections and write outreach that earns a reply.
When you answer:
- Lead with the recommendation or the message itself, then explain why in a few bullet points.
- Say which facts you were given and which you assumed (budget, authority, timeline); never present guesses as facts.
- Show the arithmetic for any deal value, discount or commission figure.
- End with concrete next steps and who should take them.
You are honest with buyers: you do not invent features, customers, discounts, deadlines or scarcity,
and you do not write messages that impersonate someone, mislead about pricing or pressure vulnerable people.
You respect privacy and anti-spam rules (consent, opt-out, no scraped personal data) and say so when relevant.
Keep answers short: reps read them between calls."""

Stage = Literal["unqualified", "nurture", "qualified", "sales_ready"]


class LeadInput(BaseModel):
    """What is known about a lead."""

    company: str = Field(min_length=1, max_length=500, description="The prospect's company or organisation.")
    contact_role: str = Field(min_length=1, max_length=500, description="The contact's job title or role.")
    notes: str = Field(
        min_length=1, max_length=20_000, description="Everything known: call notes, form answers, signals."
    )
    product: str | None = Field(default=None, max_length=500, description="Optional product or plan being sold.")
    estimated_deal_size: float | None = Field(
        default=None, ge=0, le=1_000_000_000, description="Optional estimated deal value in USD."
    )


class CriterionScore(BaseModel):
    """One qualification criterion (e.g. BANT) and what the evidence says."""

    criterion: Literal["budget", "authority", "need", "timeline"] = Field(description="The BANT criterion.")
    status: Literal["met", "partial", "unknown", "not_met"] = Field(description="How well the evidence meets it.")
    evidence: str = Field(description="The evidence from the notes, or what is missing.")


class LeadQualification(BaseModel):
    """A qualification verdict with next steps."""

    score: int = Field(ge=0, le=100, description="Overall lead score, 0 (poor fit) to 100 (ready to buy).")
    stage: Stage = Field(description="The recommended pipeline stage.")
    criteria: list[CriterionScore] = Field(min_length=1, max_length=4, description="BANT assessment.")
    questions_to_ask: list[str] = Field(max_length=8, description="Discovery questions to close the gaps.")
    next_steps: list[str] = Field(min_length=1, max_length=6, description="Recommended next actions.")


class ObjectionInput(BaseModel):
    """A buyer objection to respond to."""

    objection: str = Field(min_length=1, max_length=2_000, description="The objection as the buyer phrased it.")
    product: str = Field(min_length=1, max_length=2_000, description="The product and its relevant facts.")
    context: str | None = Field(default=None, max_length=5_000, description="Optional deal context.")


class ObjectionResponse(BaseModel):
    """How to answer an objection."""

    underlying_concern: str = Field(description="What the buyer is probably really worried about.")
    response: str = Field(description="A suggested spoken or written response.")
    clarifying_question: str = Field(description="A question that moves the conversation forward.")
    proof_points: list[str] = Field(max_length=5, description="Evidence the rep should have ready (if true).")


class OutreachInput(BaseModel):
    """A prospect and the value proposition for first-touch outreach."""

    prospect: str = Field(min_length=1, max_length=2_000, description="Who the prospect is and any relevant context.")
    value_proposition: str = Field(min_length=1, max_length=2_000, description="What we offer and why it matters.")
    channel: Literal["email", "linkedin", "call_script"] = Field(default="email", description="Outreach channel.")
    sequence_length: int = Field(default=3, ge=1, le=6, description="How many touches to write, including the first.")


class OutreachTouch(BaseModel):
    """One message of an outreach sequence."""

    day: int = Field(ge=0, le=60, description="Days after the first touch to send this one (0 for the first).")
    subject: str = Field(description="Subject line, or an opening line for calls and LinkedIn.")
    message: str = Field(description="The message text.")


class OutreachSequence(BaseModel):
    """A personalised outreach sequence."""

    touches: list[OutreachTouch] = Field(min_length=1, max_length=6, description="The messages, in order.")
    personalization_notes: list[str] = Field(max_length=5, description="What to personalise before sending.")


TEAM = Team(
    name="sales",
    description="Lead qualification, objection handling and outreach sequences for sales reps.",
    role=ROLE,
    model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="qualify_lead",
            description="Score a lead with BANT and recommend its pipeline stage and next steps.",
            input=LeadInput,
            output=LeadQualification,
            instructions=(
                "Assess the lead against budget, authority, need and timeline using only the evidence in the notes; "
                "mark criteria without evidence as unknown. Give a 0-100 score consistent with the assessment, the "
                "pipeline stage, discovery questions for the gaps and concrete next steps."
            ),
        ),
        Operation(
            name="handle_objection",
            description="Suggest an honest, effective response to a buyer's objection.",
            input=ObjectionInput,
            output=ObjectionResponse,
            instructions=(
                "Identify the concern behind the objection, then write a short, honest response that acknowledges "
                "it, a clarifying question, and the proof points the rep should have. Do not invent facts."
            ),
        ),
        Operation(
            name="draft_outreach",
            description="Write a personalised multi-touch outreach sequence for a prospect.",
            input=OutreachInput,
            output=OutreachSequence,
            instructions=(
                "Write sequence_length touches for the channel, each shorter than the last, focused on the "
                "prospect's likely problem rather than on features. Include an easy opt-out in emails and note "
                "what the rep must personalise. No fake urgency or false familiarity."
            ),
        ),
    ),
)
