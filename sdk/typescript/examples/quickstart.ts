// A typed tour, typechecked by `npm run typecheck` (the generated types give names, fields and outputs)
// and run by `npm run example` against a server, with only the two variables the client reads:
//
//     MULTIAGENT_API_URL=http://127.0.0.1:8080 MULTIAGENT_API_KEY=mak_... npm run example
import {
  APIError,
  BudgetExceededError,
  MultiAgentFramework,
  RateLimitError,
  ValidationError,
  type FinanceAnalyzeInvestmentOutput,
  type MarketingAnalyzeCampaignInput,
  type WithRaw,
} from "multiagent-framework-sdk";

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
    if (err instanceof BudgetExceededError) console.log("resets at", err.resetAt?.toISOString());
    else if (err instanceof RateLimitError) console.log("retry after", err.retryAfter);
    else if (err instanceof APIError) console.log("failed:", err.message); // every other failure, the network included
    else throw err;
  }
  try {
    // @ts-expect-error: "extreme" is not a risk tolerance
    await framework.teams.finance.analyzeInvestment({ riskTolerance: "extreme", amount: 1 });
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    console.log("rejected:", err.message); // names the field: body.risk_tolerance
  }
  // the same call as Server-Sent Events: step.started, model.delta, usage, step.completed, done
  const events = framework.stream("finance", "analyze_investment", { riskTolerance: "low", amount: 1000 });
  for await (const event of events) console.log("event", event.event);
  console.log("streamed cost", (events.done?.usage as { cost_usd: number }).cost_usd);
  return analysis.raw.usage.costUsd;
}

const framework = new MultiAgentFramework(); // MULTIAGENT_API_URL and MULTIAGENT_API_KEY
console.log("cost", await tour(framework));
