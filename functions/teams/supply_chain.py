"""Supply-chain team: demand forecasting, inventory policy and supplier risk."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the supply-chain team: planners and analysts experienced in demand planning, inventory
optimisation (EOQ, safety stock, reorder points), S&OP, procurement, logistics and supplier risk.
You balance service level, working capital and resilience, and make the trade-offs explicit.
When you answer:
- Lead with the recommendation and the key number, then the method and the workings.
- Use the calculator for every formula; show inputs, formula and result with units.
- State assumptions (demand distribution, lead-time variability, service-level target, seasonality).
- Quantify uncertainty with ranges and name the inputs the answer is most sensitive to.
You do not invent supplier facts or market data; where you draw on general knowledge (e.g. regional risk),
you say so and recommend verifying it.
You refuse to help evade sanctions, export controls, customs duties or forced-labour and due-diligence rules,
and you flag ESG and compliance risks in supplier decisions.
Be concise and numerate; planners will put your numbers into their systems."""

Level = Literal["low", "medium", "high"]


class DemandInput(BaseModel):
    """Demand history for one item."""

    item: str = Field(min_length=1, max_length=500, description="The item or SKU family.")
    history: list[float] = Field(
        min_length=3, max_length=120, description="Past demand per period, oldest first (units)."
    )
    period: Literal["week", "month", "quarter"] = Field(default="month", description="Length of one period.")
    horizon: int = Field(default=6, ge=1, le=24, description="How many periods to forecast.")
    known_events: list[str] = Field(
        default_factory=list, max_length=10, description="Optional upcoming events: promotions, launches, holidays."
    )


class ForecastPoint(BaseModel):
    """Forecast for one future period."""

    period: int = Field(ge=1, le=24, description="Periods ahead, 1 being the next period.")
    forecast: float = Field(ge=0, description="Point forecast, in units.")
    low: float = Field(ge=0, description="Lower bound of an ~80% interval, in units.")
    high: float = Field(ge=0, description="Upper bound of an ~80% interval, in units.")


class DemandForecast(BaseModel):
    """A demand forecast with method and assumptions."""

    method: str = Field(description="The method used and why (e.g. moving average, Holt-Winters, naive seasonal).")
    points: list[ForecastPoint] = Field(min_length=1, max_length=24, description="One point per forecast period.")
    trend: Literal["declining", "flat", "growing", "volatile"] = Field(description="The trend seen in the history.")
    assumptions: list[str] = Field(max_length=8, description="Assumptions and adjustments for known events.")


class InventoryInput(BaseModel):
    """Parameters for an inventory policy."""

    annual_demand: float = Field(gt=0, le=1_000_000_000, description="Expected annual demand, in units.")
    order_cost: float = Field(ge=0, le=10_000_000, description="Fixed cost per order, in USD.")
    unit_cost: float = Field(gt=0, le=10_000_000, description="Cost of one unit, in USD.")
    holding_cost_rate_percent: float = Field(gt=0, le=100, description="Annual holding cost as a percent of unit cost.")
    lead_time_days: float = Field(gt=0, le=365, description="Average supplier lead time, in days.")
    demand_std_dev_daily: float = Field(
        default=0, ge=0, le=1_000_000, description="Standard deviation of daily demand, in units."
    )
    service_level_percent: float = Field(
        default=95, ge=50, le=99.99, description="Target cycle service level, in percent."
    )


class InventoryPolicy(BaseModel):
    """An (s, Q) inventory policy."""

    economic_order_quantity: float = Field(ge=0, description="EOQ = sqrt(2 x D x S / H), in units.")
    safety_stock: float = Field(ge=0, description="z x sigma_daily x sqrt(lead time), in units.")
    reorder_point: float = Field(ge=0, description="Daily demand x lead time + safety stock, in units.")
    annual_cost: float = Field(ge=0, description="Annual ordering plus holding cost, in USD.")
    workings: list[str] = Field(min_length=1, max_length=10, description="Each formula with its inputs and result.")


class Supplier(BaseModel):
    """One supplier in the assessment."""

    name: str = Field(min_length=1, max_length=200, description="Supplier name.")
    country: str = Field(min_length=1, max_length=100, description="Country of the supplying site.")
    spend_share_percent: float = Field(ge=0, le=100, description="Share of category spend, in percent.")
    single_source: bool = Field(default=False, description="Whether no alternative supplier is qualified.")
    notes: str | None = Field(default=None, max_length=2_000, description="Optional known issues or performance data.")


class SupplierRiskInput(BaseModel):
    """Suppliers of one category to assess."""

    category: str = Field(min_length=1, max_length=500, description="The purchased category, e.g. 'PCB assemblies'.")
    suppliers: list[Supplier] = Field(min_length=1, max_length=30, description="The suppliers to assess.")


class SupplierRisk(BaseModel):
    """Risk assessment of one supplier."""

    supplier: str = Field(description="The supplier name.")
    risk_level: Level = Field(description="Overall risk level.")
    drivers: list[str] = Field(min_length=1, max_length=6, description="What drives the risk.")
    mitigation: str = Field(description="Recommended mitigation.")


class SupplierRiskReport(BaseModel):
    """Supplier risk across a category."""

    suppliers: list[SupplierRisk] = Field(min_length=1, max_length=30, description="One entry per supplier.")
    concentration_risk: Level = Field(description="Risk from spend concentration and single sourcing.")
    recommendations: list[str] = Field(min_length=1, max_length=8, description="Category-level recommendations.")


TEAM = Team(
    name="supply-chain",
    description="Demand forecasting, inventory policies (EOQ, safety stock) and supplier risk assessment.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="forecast_demand",
            description="Forecast demand for an item from its history, with intervals.",
            input=DemandInput,
            output=DemandForecast,
            instructions=(
                "Pick a method suited to the history (trend, seasonality, noise) and explain it, forecast each "
                "period of the horizon with an ~80% interval, describe the trend, and adjust for known events "
                "stating how. Use the calculator for the arithmetic."
            ),
        ),
        Operation(
            name="plan_inventory",
            description="Compute EOQ, safety stock and reorder point for an item.",
            input=InventoryInput,
            output=InventoryPolicy,
            instructions=(
                "H = unit cost x holding rate. EOQ = sqrt(2DS/H). Daily demand = D / 365. Safety stock = z for the "
                "service level x demand_std_dev_daily x sqrt(lead time). Reorder point = daily demand x lead time + "
                "safety stock. Annual cost = D/EOQ x S + (EOQ/2 + safety stock) x H. Show every step in workings."
            ),
        ),
        Operation(
            name="assess_supplier_risk",
            description="Assess the risk of each supplier in a category and the category's concentration.",
            input=SupplierRiskInput,
            output=SupplierRiskReport,
            instructions=(
                "Rate each supplier on dependency (spend share, single sourcing), geographic and geopolitical "
                "exposure, and any known issues, with mitigations. Rate concentration risk and give category-level "
                "recommendations such as dual sourcing or buffer stock. Flag general-knowledge claims to verify."
            ),
        ),
    ),
)
