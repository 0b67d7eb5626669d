/**
 * TypeScript client for multiagent-framework.
 *
 *     import { MultiAgentFramework } from "multiagent-framework-sdk";
 *     const framework = new MultiAgentFramework({ apiUrl, apiKey });
 *     const campaign = await framework.teams.marketing.analyzeCampaign({ target: "developers", budget: 5000 });
 *     console.log(campaign.summary, campaign.raw.usage.costUsd);
 */

export * from "./client.js";
export * from "./errors.js";
export * from "./generated.js";
export * from "./team.js";
