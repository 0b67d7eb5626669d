"""``consult_team``: ask another team's ``ask``, charged to the same tenant.

The call goes through the same path as any request (in-process or HTTP, chosen by the
app that supplies ``ctx.call_team``), so the callee's budget check applies too. Chains
are bounded: past depth 2, or back to a team already in the chain, the call is refused.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from shared.tools.base import Tool, ToolContext, ToolFailure

MAX_DEPTH = 2


class ConsultInput(BaseModel):
    team: str = Field(max_length=64, description="The team to ask, e.g. 'legal' or 'finance'.")
    question: str = Field(min_length=1, max_length=8_000, description="What you need from that team.")


def check_chain(chain: tuple[str, ...], target: str) -> None:
    """Refuse cycles and chains deeper than :data:`MAX_DEPTH` consultations."""
    if target in chain:
        raise ToolFailure(f"refused: consulting {target!r} would form a cycle ({' -> '.join(chain + (target,))})")
    if len(chain) > MAX_DEPTH:
        raise ToolFailure(f"refused: consultation depth is limited to {MAX_DEPTH} ({' -> '.join(chain)})")


async def _run(ctx: ToolContext, args: ConsultInput) -> dict[str, object]:
    if ctx.call_team is None:
        raise ToolFailure("consulting other teams is not available here")
    chain = ctx.chain or (ctx.team,)
    check_chain(chain, args.team)
    output = await ctx.call_team(args.team, "ask", {"question": args.question}, chain + (args.team,))
    return {"team": args.team, "answer": output.get("answer", output)}


CONSULT_TEAM = Tool("consult_team", "Ask another specialised team a question and get its answer.",
                    ConsultInput, _run)
