"""Manufacturing team: defect root-cause analysis, process optimisation and OEE."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the manufacturing team: process, quality and industrial engineers experienced in discrete and
process manufacturing, lean (value-stream mapping, SMED, 5S), Six Sigma (DMAIC, SPC), TPM and OEE.
You diagnose with data and first principles: go to the gemba, find the root cause, then fix the system.
When you answer:
- Structure the answer (e.g. containment, root cause, corrective action, verification) and keep it actionable.
- State assumptions about volumes, shifts, equipment and tolerances; ask for the data you would need.
- Show calculations (OEE, takt time, cycle time, Cpk, scrap cost) step by step with units.
- Rank actions by impact and effort and say how each will be verified.
Worker safety comes first: you never recommend bypassing guards, interlocks, lockout/tagout or PPE, or
exceeding equipment ratings, and you flag when a change needs a risk assessment or management of change.
You do not help falsify quality records, certificates of conformance or inspection results.
Be concise and practical; engineers on the shop floor will read this."""

Category = Literal["man", "machine", "method", "material", "measurement", "environment"]
Level = Literal["low", "medium", "high"]


class DefectInput(BaseModel):
    """A quality problem to investigate."""

    process: str = Field(min_length=1, max_length=2_000, description="The product and process step affected.")
    defect_description: str = Field(min_length=1, max_length=10_000, description="What the defect looks like.")
    defect_rate_percent: float | None = Field(
        default=None, ge=0, le=100, description="Optional current defect rate, in percent of units."
    )
    data: str | None = Field(
        default=None, max_length=20_000, description="Optional observations: when it started, shifts, lots, changes."
    )


class RootCause(BaseModel):
    """A candidate root cause (Ishikawa category)."""

    cause: str = Field(description="The suspected root cause.")
    category: Category = Field(description="Ishikawa (6M) category.")
    likelihood: Level = Field(description="How likely given the evidence.")
    how_to_confirm: str = Field(description="The test or data that would confirm or rule it out.")


class DefectAnalysis(BaseModel):
    """A structured defect investigation (8D-style)."""

    containment_actions: list[str] = Field(
        min_length=1, max_length=6, description="Immediate actions to protect customers."
    )
    root_causes: list[RootCause] = Field(
        min_length=1, max_length=10, description="Candidate causes, most likely first."
    )
    corrective_actions: list[str] = Field(
        min_length=1, max_length=8, description="Permanent fixes for the likely causes."
    )
    verification: list[str] = Field(min_length=1, max_length=6, description="Metrics and checks proving the fix works.")


class ProcessInput(BaseModel):
    """A production process to optimise."""

    process_description: str = Field(
        min_length=1, max_length=20_000, description="The process steps, with cycle times and staffing if known."
    )
    current_output_per_hour: float | None = Field(
        default=None, ge=0, le=1_000_000, description="Optional current throughput in units per hour."
    )
    target_output_per_hour: float | None = Field(
        default=None, gt=0, le=1_000_000, description="Optional target throughput in units per hour."
    )
    constraints: list[str] = Field(
        default_factory=list, max_length=10, description="Optional constraints, e.g. 'no capex', 'two shifts only'."
    )


class Improvement(BaseModel):
    """One process improvement."""

    action: str = Field(description="The improvement.")
    expected_impact: str = Field(description="Expected effect with an estimate, e.g. '-12 s cycle time'.")
    effort: Level = Field(description="Effort and cost to implement.")
    safety_review_needed: bool = Field(description="Whether a risk assessment or management of change is needed.")


class ProcessOptimization(BaseModel):
    """Bottlenecks and improvements for a process."""

    bottleneck: str = Field(description="The constraint that limits throughput, and why.")
    improvements: list[Improvement] = Field(min_length=1, max_length=10, description="Improvements, best ratio first.")
    estimated_output_per_hour: float = Field(ge=0, description="Estimated throughput after the improvements.")
    assumptions: list[str] = Field(max_length=8, description="Assumptions behind the estimates.")


class OeeInput(BaseModel):
    """Shift data for an OEE calculation."""

    planned_production_minutes: float = Field(gt=0, le=100_000, description="Planned production time, in minutes.")
    downtime_minutes: float = Field(ge=0, le=100_000, description="Unplanned stops, in minutes.")
    ideal_cycle_time_seconds: float = Field(gt=0, le=100_000, description="Ideal time to make one unit, in seconds.")
    total_units: int = Field(ge=0, le=100_000_000, description="Units produced, good and bad.")
    good_units: int = Field(ge=0, le=100_000_000, description="Units that passed quality first time.")


class OeeReport(BaseModel):
    """OEE and its components, with the biggest loss."""

    availability_percent: float = Field(ge=0, le=100, description="Run time / planned production time.")
    performance_percent: float = Field(ge=0, le=100, description="Ideal cycle time x total units / run time.")
    quality_percent: float = Field(ge=0, le=100, description="Good units / total units.")
    oee_percent: float = Field(ge=0, le=100, description="Availability x performance x quality.")
    biggest_loss: Literal["availability", "performance", "quality"] = Field(description="The weakest component.")
    recommendations: list[str] = Field(min_length=1, max_length=6, description="Actions targeting the biggest loss.")


TEAM = Team(
    name="manufacturing",
    description="Defect root-cause analysis, process optimisation and OEE for production lines.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="analyze_defects",
            description="Investigate a defect: containment, candidate root causes, corrective actions.",
            input=DefectInput,
            output=DefectAnalysis,
            instructions=(
                "Work like an 8D investigation: propose containment first, then candidate root causes by 6M "
                "category with how to confirm each, permanent corrective actions and how to verify them."
            ),
        ),
        Operation(
            name="optimize_process",
            description="Find the bottleneck of a process and propose improvements with estimated gains.",
            input=ProcessInput,
            output=ProcessOptimization,
            instructions=(
                "Identify the bottleneck, propose improvements ranked by impact versus effort within the "
                "constraints, estimate throughput afterwards showing the arithmetic in the assumptions, and flag "
                "changes needing a safety review. Never suggest bypassing safety devices."
            ),
        ),
        Operation(
            name="calculate_oee",
            description="Compute OEE and its components from shift data and target the biggest loss.",
            input=OeeInput,
            output=OeeReport,
            instructions=(
                "Compute run time = planned - downtime; availability = run time / planned; performance = ideal "
                "cycle time x total units / run time (capped at 100); quality = good / total; OEE = the product. "
                "Use the calculator, identify the weakest component and recommend actions for it."
            ),
        ),
    ),
)
