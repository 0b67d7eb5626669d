"""Cloud-services team: architecture design, cost estimation and migration planning."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the cloud-services team: cloud architects and SREs fluent in AWS, Google Cloud and Azure,
Kubernetes, serverless, networking, IAM, observability and FinOps, guided by the Well-Architected frameworks.
When you answer:
- Lead with the recommended design or decision, then the trade-offs against realistic alternatives.
- State assumptions about load, data volume, availability and latency targets, region and compliance.
- Show cost estimates line by line with unit prices and quantities, label them as estimates, and note that
  list prices change; use the calculator for the sums.
- Cover security (least-privilege IAM, encryption, network boundaries), reliability, and operability.
- Prefer managed services and simple designs unless a requirement justifies the complexity.
You never ask for or echo credentials, keys or secrets, and you recommend secret managers over hard-coding.
You refuse to help with unauthorised access to others' cloud accounts, evading provider abuse controls, or
cryptomining on resources one does not own.
Be concrete: name services, sizes and settings, not generic advice."""

Cloud = Literal["aws", "gcp", "azure", "any"]


class ArchitectureInput(BaseModel):
    """A workload to design a cloud architecture for."""

    workload: str = Field(min_length=1, max_length=20_000, description="What the system does and how it is used.")
    cloud: Cloud = Field(default="any", description="Target cloud provider, or 'any'.")
    requests_per_second: float | None = Field(
        default=None, ge=0, le=10_000_000, description="Optional expected peak requests per second."
    )
    availability_target_percent: float | None = Field(
        default=None, ge=90, le=100, description="Optional availability target, e.g. 99.9."
    )
    requirements: list[str] = Field(
        default_factory=list, max_length=15, description="Optional requirements: compliance, latency, data residency."
    )


class Component(BaseModel):
    """One component of the architecture."""

    name: str = Field(description="Logical component, e.g. 'API', 'queue', 'database'.")
    service: str = Field(description="The concrete managed service and size, e.g. 'Cloud Run, 2 vCPU'.")
    purpose: str = Field(description="Why it is there.")


class Architecture(BaseModel):
    """A proposed cloud architecture."""

    summary: str = Field(description="The design in a paragraph, with the data flow.")
    components: list[Component] = Field(min_length=1, max_length=20, description="The components.")
    tradeoffs: list[str] = Field(min_length=1, max_length=8, description="Trade-offs and rejected alternatives.")
    security_controls: list[str] = Field(min_length=1, max_length=10, description="Key security controls.")
    estimated_monthly_cost_usd: float = Field(ge=0, description="Rough monthly cost estimate, in USD.")


class Resource(BaseModel):
    """One resource line to price."""

    service: str = Field(min_length=1, max_length=200, description="Service and tier, e.g. 'AWS RDS db.m6g.large'.")
    quantity: float = Field(gt=0, le=1_000_000_000, description="Quantity in the unit given.")
    unit: str = Field(min_length=1, max_length=100, description="Unit, e.g. 'instance-hours/month', 'GB-month'.")


class CostInput(BaseModel):
    """Resources to estimate the monthly cost of."""

    cloud: Cloud = Field(default="aws", description="Cloud provider whose list prices to use.")
    region: str | None = Field(default=None, max_length=100, description="Optional region, e.g. 'eu-west-1'.")
    resources: list[Resource] = Field(min_length=1, max_length=50, description="The resources.")


class CostLine(BaseModel):
    """Estimated cost of one resource."""

    service: str = Field(description="The resource.")
    unit_price_usd: float = Field(ge=0, description="Assumed list price per unit, in USD.")
    monthly_cost_usd: float = Field(ge=0, description="Quantity x unit price, in USD per month.")


class CostEstimate(BaseModel):
    """A monthly cost estimate with savings ideas."""

    lines: list[CostLine] = Field(min_length=1, max_length=50, description="One line per resource.")
    total_monthly_usd: float = Field(ge=0, description="Sum of the lines, in USD per month.")
    assumptions: list[str] = Field(max_length=10, description="Pricing assumptions; list prices change.")
    savings_opportunities: list[str] = Field(max_length=8, description="Ways to reduce cost, with estimated savings.")


class MigrationInput(BaseModel):
    """A system to migrate to the cloud."""

    current_system: str = Field(min_length=1, max_length=20_000, description="The current system and its dependencies.")
    target_cloud: Cloud = Field(default="any", description="Target cloud provider.")
    max_downtime_minutes: int | None = Field(
        default=None, ge=0, le=100_000, description="Optional acceptable cutover downtime, in minutes."
    )


class MigrationWave(BaseModel):
    """One wave of the migration."""

    name: str = Field(description="Wave name.")
    strategy: Literal["rehost", "replatform", "refactor", "repurchase", "retire", "retain"] = Field(
        description="The migration strategy (the 6 Rs)."
    )
    workloads: list[str] = Field(min_length=1, max_length=10, description="What moves in this wave.")
    duration_weeks: float = Field(gt=0, le=104, description="Estimated duration in weeks.")


class MigrationPlan(BaseModel):
    """A phased cloud migration plan."""

    waves: list[MigrationWave] = Field(min_length=1, max_length=10, description="Migration waves, in order.")
    cutover_plan: str = Field(description="How cutover and rollback work within the downtime budget.")
    risks: list[str] = Field(min_length=1, max_length=8, description="Main risks and mitigations.")


TEAM = Team(
    name="cloud-services",
    description="Cloud architecture design, cost estimation and migration planning (AWS, GCP, Azure).",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="design_architecture",
            description="Design a cloud architecture for a workload with trade-offs and a cost estimate.",
            input=ArchitectureInput,
            output=Architecture,
            instructions=(
                "Propose a simple, managed-first architecture that meets the load, availability and other "
                "requirements on the target cloud. Name concrete services and sizes, explain trade-offs, list "
                "security controls and give a rough monthly cost labelled as an estimate."
            ),
        ),
        Operation(
            name="estimate_cost",
            description="Estimate the monthly cost of a list of cloud resources.",
            input=CostInput,
            output=CostEstimate,
            instructions=(
                "Price each resource at an assumed on-demand list price for the cloud and region, multiply by "
                "quantity with the calculator, and sum. State pricing assumptions and suggest savings (rightsizing, "
                "commitments, storage tiers) with estimated amounts."
            ),
        ),
        Operation(
            name="plan_migration",
            description="Plan a phased migration of a system to the cloud.",
            input=MigrationInput,
            output=MigrationPlan,
            instructions=(
                "Group workloads into waves by dependency and risk, choose a 6R strategy for each, estimate "
                "durations, and describe cutover and rollback within the downtime budget. List risks."
            ),
        ),
    ),
)
