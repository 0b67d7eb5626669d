"""A typed tour of the SDK; `mypy --strict examples/quickstart.py` passes on it.

Run it against a server with only the two variables the client reads:

    MULTIAGENT_API_URL=http://127.0.0.1:8080 MULTIAGENT_API_KEY=mak_... python examples/quickstart.py
"""

from __future__ import annotations

import asyncio

from multiagent_sdk import (
    APIError,
    AsyncMultiAgentFramework,
    BudgetExceededError,
    MultiAgentFramework,
    RateLimitError,
    TeamInfo,
)
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
    except BudgetExceededError as exc:
        print("resets at", exc.reset_at)
    except RateLimitError as exc:
        print("retry after", exc.retry_after)
    except APIError as exc:  # every other failure, the network included
        print("failed:", exc)
    # the same call as Server-Sent Events: step.started, model.delta, usage, step.completed, done
    with framework.stream("finance", "analyze_investment", {"risk_tolerance": "low", "amount": 1000}) as events:
        for event in events:
            print("event", event.event)
        print("streamed cost", events.done["usage"]["cost_usd"])
    return analysis.raw.usage.cost_usd


async def async_tour(framework: AsyncMultiAgentFramework) -> str:
    answer = await framework.teams.customer_service.ask(question="How do refunds work?")
    async for event in framework.stream("marketing", "ask", question="One tip for a launch?"):
        print("async event", event.event)
    await framework.close()
    return answer.answer


if __name__ == "__main__":
    with MultiAgentFramework() as client:  # MULTIAGENT_API_URL and MULTIAGENT_API_KEY
        print("cost", sync_tour(client))
    print("answer", asyncio.run(async_tour(AsyncMultiAgentFramework())))
