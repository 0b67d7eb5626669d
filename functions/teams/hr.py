"""HR team: job descriptions, interview plans and people-policy questions."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the HR team: people partners, recruiters and learning specialists who have built hiring,
performance, compensation and employee-relations practices in growing organisations.
You give practical, fair and legally aware guidance, and write in inclusive, plain language.
When you answer:
- Lead with the recommendation, then the reasoning and the steps to carry it out.
- State assumptions about jurisdiction, company size and policy; employment law differs by country and state.
- Show how any pay, leave or headcount figure was calculated.
- Point out where a decision should involve legal counsel or a documented process.
You never discriminate or help others discriminate on protected characteristics (age, sex, gender identity,
race, ethnicity, religion, disability, pregnancy, sexual orientation, nationality, etc.) in hiring, pay,
promotion or dismissal, and you flag biased wording or criteria when you see them.
You refuse to help with covert surveillance of employees, retaliation against whistleblowers, or pretextual
dismissals, and you keep personal data about individuals to what is needed.
Your guidance is not legal advice; recommend employment counsel for disputes, terminations and investigations."""

Seniority = Literal["intern", "junior", "mid", "senior", "lead", "manager", "director", "executive"]


class JobDescriptionInput(BaseModel):
    """What the hiring manager knows about the role."""

    title: str = Field(min_length=1, max_length=200, description="Working job title.")
    seniority: Seniority = Field(description="Seniority level of the role.")
    team: str = Field(min_length=1, max_length=500, description="The team and what it does.")
    responsibilities: list[str] = Field(
        default_factory=list, max_length=20, description="Optional known responsibilities, in the manager's words."
    )
    location: str | None = Field(default=None, max_length=200, description="Optional location or 'remote'.")
    salary_range: str | None = Field(default=None, max_length=200, description="Optional pay range to include.")


class JobDescription(BaseModel):
    """A publishable, inclusive job description."""

    title: str = Field(description="The recommended job title.")
    summary: str = Field(description="A short pitch for the role and team.")
    responsibilities: list[str] = Field(min_length=3, max_length=10, description="What the person will do.")
    requirements: list[str] = Field(min_length=1, max_length=8, description="Must-have skills and experience.")
    nice_to_have: list[str] = Field(max_length=6, description="Helpful but not required.")
    inclusivity_notes: list[str] = Field(max_length=6, description="Wording changes made to reduce bias.")


class InterviewPlanInput(BaseModel):
    """A role and the competencies to assess."""

    role: str = Field(min_length=1, max_length=500, description="The role being hired for.")
    competencies: list[str] = Field(
        min_length=1, max_length=12, description="Competencies to assess, e.g. 'system design', 'stakeholder mgmt'."
    )
    max_stages: int = Field(default=4, ge=1, le=8, description="Maximum number of interview stages.")


class InterviewStage(BaseModel):
    """One stage of the interview loop."""

    name: str = Field(description="Stage name, e.g. 'Technical deep-dive'.")
    duration_minutes: int = Field(ge=10, le=480, description="Length of the stage in minutes.")
    competencies: list[str] = Field(min_length=1, max_length=6, description="Competencies assessed in this stage.")
    questions: list[str] = Field(min_length=1, max_length=8, description="Structured, job-related questions.")


class InterviewPlan(BaseModel):
    """A structured interview plan with a scoring rubric."""

    stages: list[InterviewStage] = Field(min_length=1, max_length=8, description="The stages, in order.")
    rubric: list[str] = Field(min_length=1, max_length=10, description="What strong, adequate and weak answers show.")
    fairness_notes: list[str] = Field(max_length=6, description="How to keep the process consistent and fair.")


class PolicyQuestionInput(BaseModel):
    """A people-policy question from a manager or employee."""

    question: str = Field(min_length=1, max_length=5_000, description="The situation and the question.")
    jurisdiction: str | None = Field(default=None, max_length=200, description="Optional country or state.")
    policy_text: str | None = Field(default=None, max_length=20_000, description="Optional relevant company policy.")


class PolicyGuidance(BaseModel):
    """Guidance on a people-policy question."""

    answer: str = Field(description="The guidance, in plain language.")
    steps: list[str] = Field(min_length=1, max_length=8, description="What to do next, in order.")
    escalate_to_legal: bool = Field(description="Whether employment counsel should be involved.")
    caveats: list[str] = Field(max_length=6, description="Assumptions and jurisdictional caveats.")


TEAM = Team(
    name="hr",
    description="Inclusive job descriptions, structured interview plans and people-policy guidance.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="draft_job_description",
            description="Draft an inclusive, publishable job description for a role.",
            input=JobDescriptionInput,
            output=JobDescription,
            instructions=(
                "Write a clear, inclusive job description. Keep requirements to genuine must-haves, avoid gendered "
                "or age-coded wording and unnecessary degree requirements, and list the inclusivity changes made."
            ),
        ),
        Operation(
            name="design_interview_plan",
            description="Design a structured interview loop with questions and a scoring rubric.",
            input=InterviewPlanInput,
            output=InterviewPlan,
            instructions=(
                "Design at most max_stages structured stages that together cover every competency once or more. "
                "Use job-related, consistent questions (no questions about protected characteristics), and give a "
                "rubric describing strong, adequate and weak answers."
            ),
        ),
        Operation(
            name="answer_policy_question",
            description="Give practical guidance on a people-policy or employee-relations question.",
            input=PolicyQuestionInput,
            output=PolicyGuidance,
            instructions=(
                "Answer the question practically and fairly, using the policy text when given. State jurisdictional "
                "assumptions, list next steps, and set escalate_to_legal for terminations, disputes, harassment or "
                "discrimination complaints and anything with legal exposure."
            ),
        ),
    ),
)
