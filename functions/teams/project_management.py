"""Project-management team: project plans, effort estimates and status reports."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the project-management team: certified project and programme managers (PMP, PRINCE2, Scrum)
who have delivered software, infrastructure, marketing and organisational-change projects.
You turn goals into plans people can execute and keep everyone honest about scope, time, cost and risk.
When you answer:
- Give structure first: phases or milestones, owners, dependencies, then details.
- State assumptions about team size, availability, and scope; plans without assumptions are wishes.
- Show estimates as ranges (three-point/PERT: (O + 4M + P) / 6) and the arithmetic behind totals and dates.
- Identify the critical path, the biggest risks and the decisions needed, with who must make them.
- Use the current_time tool when dates matter and say which calendar assumptions you used.
You report status truthfully: you never mark work green to please stakeholders and you surface bad news early.
You plan sustainable workloads and do not build plans that rely on unpaid overtime.
Be concise: stakeholders skim, so lead with what they need to know or decide."""

Rag = Literal["green", "amber", "red"]


class ProjectInput(BaseModel):
    """A project to plan."""

    goal: str = Field(min_length=1, max_length=10_000, description="What the project must deliver and why.")
    deadline: str | None = Field(
        default=None, max_length=100, description="Optional deadline as a date, e.g. '2025-12-01'."
    )
    team: str | None = Field(default=None, max_length=2_000, description="Optional team size and roles.")
    constraints: list[str] = Field(
        default_factory=list, max_length=10, description="Optional constraints: budget, fixed dates, dependencies."
    )
    methodology: Literal["agile", "waterfall", "hybrid"] = Field(default="hybrid", description="Delivery approach.")


class Phase(BaseModel):
    """One phase of the plan."""

    name: str = Field(description="Phase name.")
    duration_weeks: float = Field(gt=0, le=260, description="Estimated duration in weeks.")
    deliverables: list[str] = Field(min_length=1, max_length=8, description="What the phase produces.")
    depends_on: list[str] = Field(max_length=6, description="Names of phases it depends on.")
    owner: str = Field(description="Accountable role.")


class ProjectPlan(BaseModel):
    """A phased project plan."""

    phases: list[Phase] = Field(min_length=1, max_length=12, description="Phases, in order.")
    milestones: list[str] = Field(min_length=1, max_length=10, description="Milestones with target weeks or dates.")
    critical_path: list[str] = Field(min_length=1, max_length=12, description="Phases on the critical path, in order.")
    total_duration_weeks: float = Field(gt=0, description="Total duration along the critical path, in weeks.")
    risks: list[str] = Field(min_length=1, max_length=8, description="Top risks with mitigations.")
    assumptions: list[str] = Field(max_length=10, description="Planning assumptions.")


class TaskInput(BaseModel):
    """A task to estimate."""

    name: str = Field(min_length=1, max_length=200, description="Task name.")
    description: str | None = Field(default=None, max_length=2_000, description="Optional task details.")


class EstimateInput(BaseModel):
    """Tasks to estimate."""

    tasks: list[TaskInput] = Field(min_length=1, max_length=50, description="The tasks.")
    context: str | None = Field(default=None, max_length=5_000, description="Optional team and technology context.")


class TaskEstimate(BaseModel):
    """A three-point estimate for one task."""

    name: str = Field(description="Task name as given.")
    optimistic_days: float = Field(ge=0, description="Optimistic estimate, in person-days.")
    most_likely_days: float = Field(ge=0, description="Most likely estimate, in person-days.")
    pessimistic_days: float = Field(ge=0, description="Pessimistic estimate, in person-days.")
    expected_days: float = Field(ge=0, description="(O + 4M + P) / 6, in person-days.")


class EffortEstimate(BaseModel):
    """Three-point estimates with a total."""

    estimates: list[TaskEstimate] = Field(min_length=1, max_length=50, description="One estimate per task.")
    total_expected_days: float = Field(ge=0, description="Sum of expected days.")
    confidence: Literal["low", "medium", "high"] = Field(description="Confidence in the estimates.")
    assumptions: list[str] = Field(max_length=10, description="Assumptions and main uncertainty drivers.")


class StatusInput(BaseModel):
    """Raw updates to turn into a status report."""

    project: str = Field(min_length=1, max_length=500, description="Project name.")
    updates: str = Field(min_length=1, max_length=20_000, description="Raw updates, notes or stand-up summaries.")
    audience: Literal["team", "stakeholders", "executives"] = Field(
        default="stakeholders", description="Who reads the report."
    )


class StatusReport(BaseModel):
    """A project status report."""

    status: Rag = Field(description="Overall RAG status, judged honestly from the updates.")
    summary: str = Field(description="Two or three sentences on where the project stands.")
    accomplishments: list[str] = Field(max_length=8, description="Done since the last report.")
    next_steps: list[str] = Field(max_length=8, description="Planned next.")
    risks_and_issues: list[str] = Field(max_length=8, description="Risks and blockers, with owners.")
    decisions_needed: list[str] = Field(max_length=5, description="Decisions or help needed from the audience.")


TEAM = Team(
    name="project-management",
    description="Project plans with critical paths, three-point effort estimates and status reports.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="plan_project",
            description="Plan a project in phases with dependencies, milestones, critical path and risks.",
            input=ProjectInput,
            output=ProjectPlan,
            instructions=(
                "Break the goal into phases suited to the methodology with deliverables, dependencies, owners and "
                "durations. Derive the critical path and total duration, set milestones (as dates if a deadline is "
                "given, checking feasibility), and list risks and assumptions."
            ),
        ),
        Operation(
            name="estimate_effort",
            description="Give three-point (PERT) estimates for tasks and a total.",
            input=EstimateInput,
            output=EffortEstimate,
            instructions=(
                "For each task give optimistic, most likely and pessimistic person-days and expected = "
                "(O + 4M + P) / 6, computed with the calculator. Sum the expected days, rate confidence and list "
                "the assumptions and biggest uncertainties."
            ),
        ),
        Operation(
            name="write_status_report",
            description="Turn raw updates into a concise, honest status report.",
            input=StatusInput,
            output=StatusReport,
            instructions=(
                "Summarise the updates for the audience: an honest RAG status, a short summary, accomplishments, "
                "next steps, risks and issues with owners, and decisions needed. Do not hide bad news."
            ),
        ),
    ),
)
