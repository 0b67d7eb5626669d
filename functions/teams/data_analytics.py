"""Data-analytics team: metric interpretation, SQL queries and dashboard design."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the data-analytics team: analysts and analytics engineers fluent in SQL, statistics,
experimentation (A/B tests), product and business metrics, and data visualisation.
You turn numbers into decisions without over-reading them.
When you answer:
- Lead with the insight in one sentence, then the evidence and the caveats.
- Show every calculation (changes, rates, confidence intervals) with the calculator, with units and periods.
- Distinguish signal from noise: consider sample size, seasonality, mix shifts and regression to the mean.
- Do not claim causation from correlation; propose how to test causal questions.
- State assumptions about definitions, data quality and missing data, and list what you would check next.
You never fabricate data points; if data is missing you say so and describe what to collect.
You respect privacy: aggregate where possible, avoid re-identifying individuals, and flag sensitive data.
You refuse to cherry-pick or manipulate charts and statistics to mislead an audience.
Be concise; use short tables or bullet lists when they make numbers easier to read."""

Significance = Literal["noise", "watch", "notable", "critical"]


class MetricValue(BaseModel):
    """One metric with its current and previous value."""

    name: str = Field(min_length=1, max_length=200, description="Metric name, e.g. 'weekly active users'.")
    current: float = Field(description="Current period value.")
    previous: float | None = Field(default=None, description="Optional previous period value for comparison.")
    unit: str | None = Field(default=None, max_length=50, description="Optional unit, e.g. 'USD', '%', 'users'.")


class MetricsInput(BaseModel):
    """Metrics to interpret."""

    metrics: list[MetricValue] = Field(min_length=1, max_length=50, description="The metrics.")
    context: str | None = Field(
        default=None, max_length=10_000, description="Optional context: launches, campaigns, seasonality, goals."
    )
    period: str | None = Field(default=None, max_length=100, description="Optional period, e.g. 'week 32 vs week 31'.")


class Insight(BaseModel):
    """One insight about the metrics."""

    metric: str = Field(description="The metric (or metrics) the insight is about.")
    observation: str = Field(description="What changed, with the computed change and percent.")
    significance: Significance = Field(description="How much attention it deserves.")
    possible_causes: list[str] = Field(max_length=5, description="Hypotheses that could explain it.")


class MetricsInterpretation(BaseModel):
    """An interpretation of a set of metrics."""

    headline: str = Field(description="The single most important takeaway.")
    insights: list[Insight] = Field(min_length=1, max_length=15, description="Insights, most significant first.")
    recommended_actions: list[str] = Field(max_length=8, description="Actions or decisions the data supports.")
    next_analyses: list[str] = Field(max_length=8, description="Checks or analyses to confirm the hypotheses.")


class SqlInput(BaseModel):
    """A question to answer with SQL."""

    question: str = Field(min_length=1, max_length=5_000, description="The business question.")
    schema_description: str = Field(
        min_length=1, max_length=30_000, description="Tables and columns (DDL or a description)."
    )
    dialect: Literal["postgres", "mysql", "bigquery", "snowflake", "sqlite", "redshift", "duckdb", "tsql"] = Field(
        default="postgres", description="SQL dialect."
    )


class SqlQuery(BaseModel):
    """A SQL query answering the question."""

    query: str = Field(description="The SQL query, formatted and commented.")
    explanation: str = Field(description="How the query answers the question.")
    assumptions: list[str] = Field(max_length=8, description="Assumptions about the schema and definitions.")
    performance_notes: list[str] = Field(max_length=5, description="Index or cost considerations.")


class DashboardInput(BaseModel):
    """Who a dashboard is for and what it should answer."""

    audience: str = Field(min_length=1, max_length=500, description="Who will use it, e.g. 'head of sales'.")
    goals: list[str] = Field(min_length=1, max_length=8, description="Questions or decisions it should support.")
    data_sources: list[str] = Field(default_factory=list, max_length=10, description="Optional available data sources.")


class KpiSpec(BaseModel):
    """One dashboard tile."""

    name: str = Field(description="KPI name.")
    definition: str = Field(description="Precise definition, including numerator, denominator and filters.")
    visualization: Literal["number", "line", "bar", "stacked_bar", "table", "funnel", "scatter", "heatmap"] = Field(
        description="Recommended chart type."
    )
    target: str = Field(description="Target or threshold, or 'n/a'.")


class DashboardDesign(BaseModel):
    """A dashboard specification."""

    kpis: list[KpiSpec] = Field(min_length=1, max_length=15, description="Tiles, in reading order.")
    layout: str = Field(description="How tiles are arranged, top to bottom.")
    filters: list[str] = Field(max_length=8, description="Filters and drill-downs to provide.")
    refresh: Literal["real_time", "hourly", "daily", "weekly"] = Field(description="Recommended refresh cadence.")


TEAM = Team(
    name="data-analytics",
    description="Metric interpretation, SQL queries and dashboard design.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="interpret_metrics",
            description="Interpret a set of metrics: what changed, how much it matters and what to do.",
            input=MetricsInput,
            output=MetricsInterpretation,
            instructions=(
                "Compute absolute and percent changes where previous values exist, judge significance considering "
                "context and likely noise, offer hypotheses (not conclusions) for causes, and recommend actions and "
                "follow-up analyses. Lead with a one-sentence headline."
            ),
        ),
        Operation(
            name="write_sql",
            description="Write a SQL query in a given dialect to answer a business question.",
            input=SqlInput,
            output=SqlQuery,
            instructions=(
                "Write a correct, readable query in the dialect using only the described tables and columns. "
                "Handle NULLs, duplicates and time zones deliberately, explain the logic, and list assumptions. "
                "Write read-only queries (no DDL or DML) unless the question requires otherwise."
            ),
        ),
        Operation(
            name="design_dashboard",
            description="Design a dashboard: KPIs with definitions, charts, layout and filters.",
            input=DashboardInput,
            output=DashboardDesign,
            instructions=(
                "Choose a small set of KPIs that answer the audience's goals, define each precisely, pick honest "
                "chart types, and describe layout, filters and refresh cadence."
            ),
        ),
    ),
)
