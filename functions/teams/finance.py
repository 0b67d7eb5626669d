"""Finance team: investment analysis, budgeting and cash-flow forecasting."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the finance team: corporate-finance analysts and financial planners fluent in budgeting,
cash-flow forecasting, valuation (DCF, multiples), portfolio theory and unit economics.
When you answer:
- Lead with the conclusion, then the workings; show every calculation with its inputs so it can be audited.
- Use the calculator tool for arithmetic rather than mental maths, and round only at the end.
- State assumptions explicitly (returns, inflation, rates, fees, tax treatment) and give ranges, not point promises.
- Separate facts you were given from estimates you made, and name the sensitivities that matter most.
You never claim or imply guaranteed returns, never present past performance as a promise, and never
recommend specific securities to buy or sell as if you knew the user's full situation.
Your output is general educational analysis, not personalised investment, tax or legal advice; say so
where it matters and suggest a licensed adviser for decisions with material consequences.
You refuse to help with fraud, market manipulation, money laundering, tax evasion or misleading accounts.
Write plainly, for a smart reader who is not a finance specialist."""

Risk = Literal["low", "medium", "high"]


class InvestmentInput(BaseModel):
    """The amount to invest and the investor's risk tolerance."""

    risk_tolerance: Risk = Field(description="How much volatility the investor can accept: low, medium or high.")
    amount: float = Field(gt=0, le=10_000_000_000, description="Amount to invest in USD; must be positive.")
    horizon_years: int | None = Field(default=None, ge=1, le=60, description="Optional investment horizon in years.")
    goal: str | None = Field(
        default=None, max_length=500, description="Optional goal, e.g. 'retirement' or 'house deposit'."
    )
    constraints: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Optional constraints, e.g. 'no fossil fuels', 'need liquidity'.",
    )


class AllocationItem(BaseModel):
    """One asset class in the suggested allocation."""

    asset_class: str = Field(description="Asset class, e.g. 'global equities', 'investment-grade bonds', 'cash'.")
    percent: float = Field(ge=0, le=100, description="Share of the amount, in percent.")
    amount: float = Field(ge=0, description="Amount allocated, in USD.")
    rationale: str = Field(description="Why this asset class and weight suit the risk tolerance.")


class InvestmentAnalysis(BaseModel):
    """An illustrative allocation with expected-return ranges and risks."""

    summary: str = Field(description="One-paragraph summary of the suggested approach.")
    allocation: list[AllocationItem] = Field(
        min_length=1, max_length=8, description="Illustrative allocation; percents sum to 100."
    )
    expected_annual_return_low_percent: float = Field(
        ge=-100, le=100, description="Low end of a plausible long-run annual return range, percent (not guaranteed)."
    )
    expected_annual_return_high_percent: float = Field(
        ge=-100, le=100, description="High end of a plausible long-run annual return range, percent (not guaranteed)."
    )
    risks: list[str] = Field(min_length=1, max_length=8, description="Main risks, including worst-case drawdown.")
    disclaimer: str = Field(description="Reminder that this is general information, not personalised advice.")


class ExpenseItem(BaseModel):
    """One budget line."""

    category: str = Field(min_length=1, max_length=200, description="Expense category, e.g. 'rent', 'payroll'.")
    amount: float = Field(ge=0, le=10_000_000_000, description="Amount for the period, in USD.")


class BudgetInput(BaseModel):
    """Income and expenses for one period."""

    income: float = Field(ge=0, le=10_000_000_000, description="Total income for the period, in USD.")
    expenses: list[ExpenseItem] = Field(min_length=1, max_length=100, description="Expense lines for the period.")
    period: Literal["monthly", "quarterly", "annual"] = Field(default="monthly", description="The budget period.")
    savings_goal: float | None = Field(
        default=None, ge=0, le=10_000_000_000, description="Optional savings target per period, in USD."
    )


class BudgetAdjustment(BaseModel):
    """A suggested change to one budget line."""

    category: str = Field(description="The expense category to change.")
    change: float = Field(description="Suggested change in USD per period (negative to cut).")
    rationale: str = Field(description="Why this change is reasonable.")


class BudgetReview(BaseModel):
    """A budget review with surplus and recommendations."""

    total_expenses: float = Field(ge=0, description="Sum of all expenses for the period, in USD.")
    surplus: float = Field(description="Income minus expenses for the period, in USD (negative is a deficit).")
    savings_rate_percent: float = Field(ge=-1000, le=100, description="Surplus as a percent of income.")
    adjustments: list[BudgetAdjustment] = Field(max_length=10, description="Suggested adjustments.")
    observations: list[str] = Field(min_length=1, max_length=8, description="Key observations about the budget.")


class CashFlowInput(BaseModel):
    """Inputs for a monthly cash-flow projection."""

    opening_balance: float = Field(ge=-10_000_000_000, le=10_000_000_000, description="Cash on hand today, in USD.")
    monthly_inflows: float = Field(ge=0, le=10_000_000_000, description="Expected monthly cash in, in USD.")
    monthly_outflows: float = Field(ge=0, le=10_000_000_000, description="Expected monthly cash out, in USD.")
    monthly_growth_percent: float = Field(
        default=0, ge=-100, le=100, description="Monthly growth rate applied to inflows, in percent."
    )
    months: int = Field(default=12, ge=1, le=36, description="How many months to project.")


class MonthProjection(BaseModel):
    """Projected figures for one month."""

    month: int = Field(ge=1, le=36, description="Month number, 1 being next month.")
    inflows: float = Field(description="Cash in during the month, in USD.")
    outflows: float = Field(description="Cash out during the month, in USD.")
    closing_balance: float = Field(description="Cash at the end of the month, in USD.")


class CashFlowForecast(BaseModel):
    """A month-by-month cash-flow forecast."""

    projections: list[MonthProjection] = Field(min_length=1, max_length=36, description="One entry per month.")
    runway_months: float = Field(
        ge=0, description="Months until cash runs out at the projected rate (the horizon if it never does)."
    )
    assumptions: list[str] = Field(max_length=8, description="Assumptions behind the forecast.")
    recommendations: list[str] = Field(max_length=8, description="Actions to improve the cash position.")


TEAM = Team(
    name="finance",
    description="Investment analysis, budgeting and cash-flow forecasting with the workings shown.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="analyze_investment",
            description="Suggest an illustrative allocation for an amount given a risk tolerance.",
            input=InvestmentInput,
            output=InvestmentAnalysis,
            instructions=(
                "Propose a diversified, illustrative allocation by asset class that matches the risk tolerance and "
                "horizon; percents must sum to 100 and amounts to the amount. Give a plausible long-run annual "
                "return range (never a guarantee), the main risks including a realistic drawdown, and a disclaimer "
                "that this is general information, not personalised investment advice."
            ),
        ),
        Operation(
            name="review_budget",
            description="Review a period budget: totals, surplus or deficit, and suggested adjustments.",
            input=BudgetInput,
            output=BudgetReview,
            instructions=(
                "Total the expenses, compute surplus and savings rate exactly, then suggest realistic adjustments "
                "that reach the savings goal if one is given. Point out the largest and most discretionary lines."
            ),
        ),
        Operation(
            name="forecast_cash_flow",
            description="Project monthly cash flow and runway from current balance, inflows and outflows.",
            input=CashFlowInput,
            output=CashFlowForecast,
            instructions=(
                "Project each month: inflows grow by monthly_growth_percent compounding, outflows stay flat unless "
                "the inputs say otherwise; closing balance is the previous balance plus inflows minus outflows. "
                "Compute runway, state assumptions and recommend actions if runway is short."
            ),
        ),
    ),
)
