"""A typed tour of the SDK; `mypy --strict examples/quickstart.py` passes on it."""

from __future__ import annotations

import asyncio

from multiagent_sdk import AsyncMultiAgentFramework, BudgetExceeded, MultiAgentFramework, RateLimited, TeamInfo
from multiagent_sdk.types import FinanceAnalyzeInvestmentOutput, MarketingAnalyzeCampaignInput


def sync_tour(framework: MultiAgentFramework) -> float:
    analysis: FinanceAnalyzeInvestmentOutput = framework.teams.finance.analyze_investment(
        risk_tolerance="medium", amount=100_000
    )
    shares: list[float] = [item.percent for item in analysis.allocation]
    campaign = framework.teams.marketing.analyze_campaign(MarketingAnalyzeCampaignInput(target="developers",
                                                                                         budget=5000))
    also = framework.teams.marketing.analyze_campaign({"target": "developers", "budget": 5000}, idempotency_key="k1")
    print(campaign.raw.usage.cost_usd, also.raw.request_id, sum(shares))
    teams: list[TeamInfo] = framework.teams.list()
    print([t.name for t in teams], framework.usage().spent_usd["day"])
    try:
        framework.teams.legal.ask(question="Is this clause enforceable?", timeout=30.0)
    except BudgetExceeded as exc:
        print("resets at", exc.reset_at)
    except RateLimited as exc:
        print("retry after", exc.retry_after)
    return analysis.raw.usage.cost_usd


async def async_tour(framework: AsyncMultiAgentFramework) -> str:
    answer = await framework.teams.customer_service.ask(question="How do refunds work?")
    return answer.answer


if __name__ == "__main__":
    with MultiAgentFramework() as client:
        sync_tour(client)
    asyncio.run(async_tour(AsyncMultiAgentFramework()))
