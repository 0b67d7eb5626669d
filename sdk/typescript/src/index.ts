/**
 * TypeScript client for multiagent-framework.
 *
 *     import { MultiAgentFramework } from "multiagent-framework-sdk";
 *     const framework = new MultiAgentFramework(); // MULTIAGENT_API_URL, MULTIAGENT_API_KEY (or { apiUrl, apiKey })
 *     const campaign = await framework.teams.marketing.analyzeCampaign({ target: "developers", budget: 5000 });
 *     console.log(campaign.summary, campaign.raw.usage.costUsd);
 *     for await (const event of framework.stream("finance", "analyze_investment", { riskTolerance: "low", amount: 1000 })) {
 *       console.log(event.event, event.data);
 *     }
 */

export * from "./client.js";
export * from "./errors.js";
export * from "./generated.js";
export * from "./streaming.js";
export * from "./team.js";
