"""Communications team: press releases, crisis communications and internal announcements."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the communications team: corporate communicators, PR leads and internal-comms specialists who
write for journalists, employees, investors, customers and regulators.
You know news values, the inverted pyramid, AP-style conventions, message houses and crisis playbooks.
When you answer:
- Put the most important information first, in short sentences a busy reader can skim.
- Tailor the message to each audience and channel, and keep it consistent across them.
- Mark anything you had to assume or invent as a placeholder in [BRACKETS] (names, figures, quotes, dates).
- Point out legal, regulatory or reputational sensitivities before publication.
You tell the truth: you do not fabricate quotes, figures, endorsements or events, do not write disinformation,
astroturf or impersonate real people, and do not help cover up safety issues or wrongdoing.
In a crisis you favour prompt, honest, empathetic communication and say what is known, unknown and being done.
Write in clear, human language; avoid jargon and corporate filler."""


class PressReleaseInput(BaseModel):
    """The news to announce."""

    announcement: str = Field(
        min_length=1, max_length=10_000, description="What is being announced and why it matters."
    )
    organization: str = Field(min_length=1, max_length=500, description="Who is announcing it.")
    audience: str | None = Field(default=None, max_length=500, description="Optional target media or readership.")
    facts: list[str] = Field(
        default_factory=list, max_length=20, description="Optional verified facts and figures to include."
    )


class PressRelease(BaseModel):
    """A press release draft."""

    headline: str = Field(description="The headline.")
    subheadline: str = Field(description="A one-sentence subheadline.")
    body: str = Field(description="The body in inverted-pyramid style, with [PLACEHOLDER] quotes where needed.")
    boilerplate: str = Field(description="The 'About' paragraph, with placeholders for unknown facts.")
    placeholders: list[str] = Field(max_length=15, description="Every placeholder the author must fill or verify.")


class CrisisInput(BaseModel):
    """A developing situation that needs a communications response."""

    situation: str = Field(min_length=1, max_length=20_000, description="What has happened, as currently known.")
    stakeholders: list[str] = Field(
        min_length=1, max_length=12, description="Who needs to hear from us, e.g. 'customers', 'staff', 'regulator'."
    )
    severity: Literal["low", "medium", "high", "critical"] = Field(
        default="medium", description="How serious the situation is."
    )


class StakeholderMessage(BaseModel):
    """What to tell one stakeholder group."""

    stakeholder: str = Field(description="The stakeholder group.")
    channel: str = Field(description="How to reach them, e.g. 'email from CEO', 'status page'.")
    timing: str = Field(description="When, e.g. 'within 1 hour', 'after root cause is confirmed'.")
    message: str = Field(description="The core message for them.")


class CrisisPlan(BaseModel):
    """A crisis communications plan."""

    holding_statement: str = Field(description="A short statement to use immediately.")
    key_messages: list[str] = Field(min_length=1, max_length=6, description="The messages everyone repeats.")
    stakeholder_messages: list[StakeholderMessage] = Field(
        min_length=1, max_length=12, description="Tailored messages per stakeholder group."
    )
    avoid: list[str] = Field(max_length=8, description="Things not to say or do (speculation, blame, minimising).")


class AnnouncementInput(BaseModel):
    """An internal change to announce to employees."""

    change: str = Field(min_length=1, max_length=10_000, description="What is changing, why and when.")
    audience: str = Field(min_length=1, max_length=500, description="Who receives it, e.g. 'all staff', 'engineering'.")
    sensitivity: Literal["routine", "significant", "sensitive"] = Field(
        default="routine", description="How emotionally or materially significant the change is."
    )


class InternalAnnouncement(BaseModel):
    """An internal announcement with supporting FAQ."""

    subject: str = Field(description="The email or post subject.")
    message: str = Field(description="The announcement text.")
    faq: list[str] = Field(max_length=10, description="Anticipated questions, each followed by its answer.")
    manager_talking_points: list[str] = Field(max_length=8, description="Points managers should cover with teams.")


TEAM = Team(
    name="communications",
    description="Press releases, crisis communications plans and internal announcements.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="draft_press_release",
            description="Draft a press release with headline, body and boilerplate.",
            input=PressReleaseInput,
            output=PressRelease,
            instructions=(
                "Write a press release in inverted-pyramid style using only the given facts. Put any quote, figure "
                "or detail you were not given in a [PLACEHOLDER] and list every placeholder. Keep it under 500 words."
            ),
        ),
        Operation(
            name="plan_crisis_response",
            description="Plan the communications response to a crisis for each stakeholder group.",
            input=CrisisInput,
            output=CrisisPlan,
            instructions=(
                "Write an honest holding statement that says what is known, what is not yet known and what is being "
                "done. Give consistent key messages, a tailored message, channel and timing per stakeholder, and "
                "what to avoid saying. Never speculate about causes or minimise harm."
            ),
        ),
        Operation(
            name="draft_internal_announcement",
            description="Draft an internal announcement with an FAQ and manager talking points.",
            input=AnnouncementInput,
            output=InternalAnnouncement,
            instructions=(
                "Write a clear announcement that explains what changes, why, when and what employees need to do. "
                "Match the tone to the sensitivity, anticipate questions in an FAQ and give managers talking points."
            ),
        ),
    ),
)
