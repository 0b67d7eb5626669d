"""Support team: ticket triage, troubleshooting and knowledge-base articles."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the technical support team: tier-1 and tier-2 engineers who triage and resolve problems with
software products, accounts, integrations, APIs and devices.
You are methodical: reproduce, isolate, fix, then prevent recurrence.
When you answer:
- Classify first (category, priority, affected scope), then give numbered steps the user can follow.
- State what you assume about the environment (OS, version, plan) and ask for the minimum missing details.
- Prefer the least disruptive fix first; warn before any step that loses data or causes downtime.
- Use the tickets tool to look up, create or update tickets; reference ticket ids in your answer.
Priority guide: p1 = outage or data loss for many users, p2 = major feature broken without workaround,
p3 = degraded or workaround exists, p4 = question or cosmetic issue.
You never ask for passwords, full card numbers or secrets, and you redact any that users paste.
You refuse to help bypass licensing, authentication or another person's account security.
Escalate security incidents, suspected data breaches and legal threats to a human immediately."""

Priority = Literal["p1", "p2", "p3", "p4"]


class TicketInput(BaseModel):
    """An incoming support ticket."""

    subject: str = Field(min_length=1, max_length=500, description="The ticket subject line.")
    body: str = Field(min_length=1, max_length=20_000, description="The ticket body as written by the user.")
    customer_tier: Literal["free", "standard", "premium", "enterprise"] | None = Field(
        default=None, description="Optional plan of the customer, which affects SLAs."
    )
    product_area: str | None = Field(default=None, max_length=200, description="Optional product area, if known.")
    ticket_id: str | None = Field(default=None, max_length=100, description="Optional existing ticket id.")


class TicketTriage(BaseModel):
    """A triage decision for a ticket."""

    category: Literal["bug", "outage", "account", "billing", "how_to", "feature_request", "security", "other"] = Field(
        description="What kind of request this is."
    )
    priority: Priority = Field(description="Priority per the p1-p4 guide.")
    summary: str = Field(description="One-sentence summary of the problem.")
    route_to: Literal["tier1", "tier2", "engineering", "billing", "security", "account_management"] = Field(
        description="Which queue should own the ticket."
    )
    missing_information: list[str] = Field(max_length=8, description="Details to request from the user.")
    first_response: str = Field(description="A short first response to send to the user.")


class TroubleshootInput(BaseModel):
    """A problem to troubleshoot."""

    problem: str = Field(min_length=1, max_length=20_000, description="What is going wrong, including error messages.")
    environment: str | None = Field(
        default=None, max_length=2_000, description="Optional environment: OS, versions, browser, plan."
    )
    steps_tried: list[str] = Field(default_factory=list, max_length=20, description="Optional steps already tried.")


class LikelyCause(BaseModel):
    """A candidate cause."""

    cause: str = Field(description="The suspected cause.")
    likelihood: Literal["low", "medium", "high"] = Field(description="How likely it is given the symptoms.")


class TroubleshootingStep(BaseModel):
    """One step to try."""

    order: int = Field(ge=1, le=30, description="Step number.")
    action: str = Field(description="What to do, precisely.")
    expected_result: str = Field(description="What should happen if this step fixes or confirms the cause.")
    risky: bool = Field(description="Whether the step may lose data or cause downtime.")


class TroubleshootingGuide(BaseModel):
    """A diagnosis with ordered steps."""

    likely_causes: list[LikelyCause] = Field(min_length=1, max_length=6, description="Causes, most likely first.")
    steps: list[TroubleshootingStep] = Field(min_length=1, max_length=15, description="Steps, least disruptive first.")
    escalate: bool = Field(description="Whether to escalate to engineering if the steps fail or now.")


class KbArticleInput(BaseModel):
    """A resolved issue to turn into a knowledge-base article."""

    issue: str = Field(min_length=1, max_length=10_000, description="The problem as users experience it.")
    resolution: str = Field(min_length=1, max_length=20_000, description="How it was resolved.")
    audience: Literal["end_user", "admin", "developer"] = Field(default="end_user", description="Who will read it.")


class KbArticle(BaseModel):
    """A knowledge-base article."""

    title: str = Field(description="A searchable title phrased as the user's problem.")
    symptoms: list[str] = Field(min_length=1, max_length=8, description="How users recognise the issue.")
    cause: str = Field(description="The cause, in terms the audience understands.")
    resolution_steps: list[str] = Field(min_length=1, max_length=15, description="Numbered steps to resolve it.")
    keywords: list[str] = Field(max_length=12, description="Search keywords and synonyms.")


TEAM = Team(
    name="support",
    description="Technical support: ticket triage, troubleshooting guides and knowledge-base articles.",
    role=ROLE,
    model="claude-haiku-4-5",
    tools=("tickets", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="triage_ticket",
            description="Classify a support ticket, set its priority and queue, and draft a first response.",
            input=TicketInput,
            output=TicketTriage,
            instructions=(
                "Classify the ticket, assign a priority using the p1-p4 guide (consider customer tier for SLAs), "
                "choose the owning queue, summarise it in one sentence, list the missing information to request, "
                "and write a short, empathetic first response. Route suspected security issues to security."
            ),
        ),
        Operation(
            name="troubleshoot",
            description="Diagnose a technical problem and give ordered troubleshooting steps.",
            input=TroubleshootInput,
            output=TroubleshootingGuide,
            instructions=(
                "List likely causes, most likely first, then numbered steps from least to most disruptive, skipping "
                "steps already tried. Mark risky steps and say whether to escalate to engineering."
            ),
        ),
        Operation(
            name="write_kb_article",
            description="Turn a resolved issue into a knowledge-base article.",
            input=KbArticleInput,
            output=KbArticle,
            instructions=(
                "Write a concise, searchable article for the audience: a problem-phrased title, symptoms, cause, "
                "numbered resolution steps and keywords. Remove any customer-identifying details."
            ),
        ),
    ),
)
