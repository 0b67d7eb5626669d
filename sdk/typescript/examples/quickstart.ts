// Typechecked by `npm run typecheck`: the generated types give names, fields and outputs.
import {
  BudgetExceeded,
  MultiAgentFramework,
  RateLimited,
  type FinanceAnalyzeInvestmentOutput,
  type MarketingAnalyzeCampaignInput,
  type WithRaw,
} from "../src/index.js";

export async function tour(framework: MultiAgentFramework): Promise<number> {
  const input: MarketingAnalyzeCampaignInput = { target: "developers", budget: 5000 };
  const campaign = await framework.teams.marketing.analyzeCampaign(input, { idempotencyKey: "campaign-1" });
  const analysis: WithRaw<FinanceAnalyzeInvestmentOutput> = await framework.teams.finance.analyzeInvestment({
    riskTolerance: "medium",
    amount: 100_000,
  });
  const shares: number[] = analysis.allocation.map((item) => item.percent);
  const low: number = analysis.expectedAnnualReturnLowPercent;
  const teams = await framework.teams.list();
  const usage = await framework.usage();
  console.log(campaign.raw.usage.costUsd, shares, low, teams.length, usage.spentUsd.day);
  try {
    await framework.teams.customerService.ask({ question: "How do refunds work?" });
  } catch (err) {
    if (err instanceof BudgetExceeded) console.log("resets at", err.resetAt?.toISOString());
    else if (err instanceof RateLimited) console.log("retry after", err.retryAfter);
    else throw err;
  }
  // @ts-expect-error: "extreme" is not a risk tolerance
  await framework.teams.finance.analyzeInvestment({ riskTolerance: "extreme", amount: 1 });
  return analysis.raw.usage.costUsd;
}

void tour(new MultiAgentFramework({ apiUrl: "http://127.0.0.1:8080", apiKey: "mak_..." }));
