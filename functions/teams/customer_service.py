"""Customer-service team: replies, complaint resolution and sentiment analysis."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the customer-service team: friendly, efficient agents who handle orders, billing, returns,
delivery problems and account questions over email, chat and phone.
You write like a helpful person, not a script: warm, clear and brief, in the customer's language.
When you answer:
- Acknowledge the customer's situation first, then give the answer or next step in plain words.
- Use only the policies and facts you were given; if something is unknown, say what you will check.
- Never promise refunds, credits, dates or exceptions that the policy does not allow; say when you escalate.
- Use the tickets tool to look up or record cases when a ticket is involved.
You protect customers' privacy: never ask for full card numbers or passwords, and verify identity before
discussing account details. You stay respectful with angry customers and do not argue or blame.
You refuse to mislead customers, hide fees, or discourage legitimate complaints, refunds or cancellations.
Flag for a human any threat of harm, legal claim, or vulnerable customer."""

Sentiment = Literal["very_negative", "negative", "neutral", "positive", "very_positive"]


class ReplyInput(BaseModel):
    """A customer message to answer."""

    customer_message: str = Field(min_length=1, max_length=20_000, description="The customer's message.")
    policy_notes: str | None = Field(
        default=None, max_length=20_000, description="Optional relevant policies (returns, refunds, shipping)."
    )
    order_context: str | None = Field(default=None, max_length=5_000, description="Optional order or account facts.")
    tone: Literal["warm", "formal", "concise"] = Field(default="warm", description="Voice of the reply.")
    ticket_id: str | None = Field(default=None, max_length=100, description="Optional ticket id to look up or update.")


class ReplyDraft(BaseModel):
    """A reply ready for an agent to send."""

    reply: str = Field(description="The reply to send to the customer.")
    sentiment: Sentiment = Field(description="The customer's sentiment as read from the message.")
    escalate: bool = Field(description="Whether a human supervisor should take over.")
    internal_note: str = Field(description="Note for the agent: what was assumed and what to check.")


class ComplaintInput(BaseModel):
    """A customer complaint to resolve."""

    complaint: str = Field(min_length=1, max_length=20_000, description="The complaint as received.")
    order_context: str | None = Field(default=None, max_length=5_000, description="Optional order or account facts.")
    allowed_remedies: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Optional remedies the agent may offer, e.g. 'refund', '10% credit', 'free replacement'.",
    )


class ResolutionOption(BaseModel):
    """One way to resolve the complaint."""

    option: str = Field(description="The remedy, e.g. 'replacement shipped express'.")
    within_policy: bool = Field(description="Whether it is among the allowed remedies.")
    cost_to_company: Literal["none", "low", "medium", "high"] = Field(description="Rough cost of the remedy.")


class ComplaintResolution(BaseModel):
    """A plan to resolve a complaint."""

    root_issue: str = Field(description="What actually went wrong, in one sentence.")
    options: list[ResolutionOption] = Field(min_length=1, max_length=5, description="Possible resolutions.")
    recommended_option: str = Field(description="The option to offer first.")
    reply: str = Field(description="A reply to the customer offering the recommended option.")
    escalate: bool = Field(description="Whether a supervisor should approve or take over.")


class SentimentInput(BaseModel):
    """A batch of customer messages."""

    messages: list[str] = Field(
        min_length=1, max_length=100, description="Customer messages (reviews, chats, survey answers)."
    )


class Theme(BaseModel):
    """A recurring theme in the messages."""

    theme: str = Field(description="The theme, e.g. 'late deliveries'.")
    mentions: int = Field(ge=0, le=100, description="How many messages mention it.")
    sentiment: Sentiment = Field(description="Typical sentiment when the theme is mentioned.")


class SentimentReport(BaseModel):
    """Sentiment and themes across messages."""

    overall: Sentiment = Field(description="Overall sentiment across the messages.")
    score: float = Field(ge=-1, le=1, description="Average sentiment from -1 (very negative) to 1 (very positive).")
    themes: list[Theme] = Field(max_length=10, description="Recurring themes, most frequent first.")
    urgent_messages: list[int] = Field(
        max_length=100, description="Zero-based indexes of messages that need an urgent human response."
    )


TEAM = Team(
    name="customer-service",
    description="Customer replies, complaint resolution and sentiment analysis for service agents.",
    role=ROLE,
    model="claude-haiku-4-5",
    tools=("tickets", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="draft_reply",
            description="Draft a reply to a customer message within the given policies.",
            input=ReplyInput,
            output=ReplyDraft,
            instructions=(
                "Write a short reply in the requested tone that acknowledges the customer and answers or gives the "
                "next step, using only the given policies and facts. Read the sentiment, decide whether to escalate, "
                "and leave an internal note of assumptions. Never promise what policy does not allow."
            ),
        ),
        Operation(
            name="resolve_complaint",
            description="Propose resolutions for a complaint and draft the reply offering the best one.",
            input=ComplaintInput,
            output=ComplaintResolution,
            instructions=(
                "Identify the root issue, list resolution options marking which are within the allowed remedies, "
                "recommend one that is fair to the customer and proportionate, and draft the reply offering it. "
                "Escalate when the best remedy is outside policy or the customer is vulnerable or threatens action."
            ),
        ),
        Operation(
            name="analyze_sentiment",
            description="Summarise sentiment and recurring themes across a batch of customer messages.",
            input=SentimentInput,
            output=SentimentReport,
            instructions=(
                "Classify the overall sentiment, give an average score from -1 to 1, group recurring themes with "
                "mention counts, and list the indexes of messages needing urgent human attention."
            ),
        ),
    ),
)
