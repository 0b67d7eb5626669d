"""Operations team: workflow optimisation, standard operating procedures and capacity planning."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the operations team: operations managers and process-improvement specialists who run service,
back-office and fulfilment operations using lean, queueing basics, capacity planning and KPIs.
You make work flow: fewer hand-offs, less waiting, clear ownership, measurable service levels.
When you answer:
- Describe the current state briefly, then the recommended changes in priority order with expected impact.
- Show capacity, utilisation and cost calculations with the calculator, with units and assumptions.
- Name an owner, a metric and a review date for each change; quick wins first, then structural fixes.
- State assumptions about volumes, staffing, tooling and service-level targets.
You design for people as well as throughput: you respect working-time and health-and-safety rules, avoid
plans that depend on sustained utilisation above ~85%, and flag changes that need consultation with staff.
You refuse to help circumvent labour law, safety regulations or audit controls.
Be practical and brief; your readers run teams day to day."""

Level = Literal["low", "medium", "high"]


class WorkflowInput(BaseModel):
    """A workflow to improve."""

    workflow: str = Field(
        min_length=1, max_length=20_000, description="The workflow's steps, roles, tools and hand-offs."
    )
    pain_points: list[str] = Field(default_factory=list, max_length=15, description="Optional known problems.")
    goals: list[str] = Field(
        default_factory=list, max_length=8, description="Optional goals, e.g. 'halve turnaround time'."
    )


class WorkflowChange(BaseModel):
    """One recommended change."""

    change: str = Field(description="What to change.")
    expected_impact: str = Field(description="Expected effect on time, cost or quality, estimated.")
    effort: Level = Field(description="Effort to implement.")
    owner: str = Field(description="Suggested owner role.")
    metric: str = Field(description="How success is measured.")


class WorkflowOptimization(BaseModel):
    """A workflow improvement plan."""

    bottlenecks: list[str] = Field(min_length=1, max_length=8, description="Where work waits or is reworked, and why.")
    quick_wins: list[WorkflowChange] = Field(max_length=6, description="Low-effort changes to make this month.")
    structural_changes: list[WorkflowChange] = Field(max_length=6, description="Bigger changes for later.")
    risks: list[str] = Field(max_length=6, description="Risks of the changes and how to manage them.")


class SopInput(BaseModel):
    """A process to document as an SOP."""

    process: str = Field(min_length=1, max_length=20_000, description="How the process is done today, in any form.")
    audience: str = Field(min_length=1, max_length=500, description="Who will follow the SOP.")
    compliance_requirements: list[str] = Field(
        default_factory=list, max_length=10, description="Optional requirements the SOP must satisfy."
    )


class SopStep(BaseModel):
    """One step of the SOP."""

    number: int = Field(ge=1, le=100, description="Step number.")
    action: str = Field(description="The action, in imperative mood.")
    owner: str = Field(description="The role responsible.")
    notes: str = Field(description="Checks, warnings or tips for the step ('' if none).")


class Sop(BaseModel):
    """A standard operating procedure."""

    title: str = Field(description="SOP title.")
    purpose: str = Field(description="Why the procedure exists.")
    scope: str = Field(description="When it applies and when it does not.")
    steps: list[SopStep] = Field(min_length=1, max_length=50, description="The steps, in order.")
    controls: list[str] = Field(max_length=10, description="Checks, approvals and records kept.")


class CapacityInput(BaseModel):
    """Demand and productivity figures for capacity planning."""

    demand_per_week: float = Field(gt=0, le=100_000_000, description="Work items arriving per week.")
    minutes_per_item: float = Field(gt=0, le=100_000, description="Average handling time per item, in minutes.")
    productive_hours_per_person_per_week: float = Field(
        default=30, gt=0, le=80, description="Productive hours per person per week, after meetings and breaks."
    )
    current_staff: float | None = Field(
        default=None, ge=0, le=1_000_000, description="Optional current headcount (FTE)."
    )
    target_utilization_percent: float = Field(default=80, gt=0, le=100, description="Target utilisation, in percent.")


class CapacityPlan(BaseModel):
    """A staffing plan from demand and productivity."""

    workload_hours_per_week: float = Field(ge=0, description="Demand x minutes per item / 60.")
    required_staff: float = Field(ge=0, description="Workload / (productive hours x target utilisation), in FTE.")
    current_utilization_percent: float = Field(
        ge=0, description="Workload / (current staff x productive hours), or 0 if current staff is unknown."
    )
    gap_fte: float = Field(description="Required minus current staff (0 if current staff is unknown).")
    recommendations: list[str] = Field(min_length=1, max_length=6, description="How to close the gap or use slack.")
    workings: list[str] = Field(min_length=1, max_length=8, description="Each calculation with its inputs.")


TEAM = Team(
    name="operations",
    description="Workflow optimisation, standard operating procedures and capacity planning.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="optimize_workflow",
            description="Find the bottlenecks in a workflow and recommend quick wins and structural changes.",
            input=WorkflowInput,
            output=WorkflowOptimization,
            instructions=(
                "Identify where work waits, loops back or is duplicated, then recommend quick wins and structural "
                "changes that serve the goals, each with estimated impact, effort, owner and metric. List risks."
            ),
        ),
        Operation(
            name="write_sop",
            description="Write a standard operating procedure from a description of a process.",
            input=SopInput,
            output=Sop,
            instructions=(
                "Write a clear SOP for the audience: purpose, scope, numbered imperative steps with owners and "
                "notes, and the controls and records required, meeting the compliance requirements if given."
            ),
        ),
        Operation(
            name="plan_capacity",
            description="Compute the staff needed for a workload and the gap to current staffing.",
            input=CapacityInput,
            output=CapacityPlan,
            instructions=(
                "Compute the weekly workload in hours, required FTE at the target utilisation, current utilisation "
                "and the FTE gap with the calculator, showing each step in workings. Recommend how to close the gap "
                "(hiring, automation, demand shaping) without planning for sustained overload."
            ),
        ),
    ),
)
