"""``current_time``: today's date and time, so agents stop guessing it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from shared.tools.base import Tool, ToolContext, ToolFailure


class ClockInput(BaseModel):
    timezone: str = Field(default="UTC", max_length=64, description="IANA zone, e.g. 'Europe/Madrid'.")


async def _run(ctx: ToolContext, args: ClockInput) -> dict[str, str]:
    try:
        zone = UTC if args.timezone.upper() == "UTC" else ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolFailure(f"unknown time zone {args.timezone!r}") from None
    now = datetime.now(zone)
    return {"iso": now.isoformat(timespec="seconds"), "weekday": now.strftime("%A"), "timezone": args.timezone}


CURRENT_TIME = Tool("current_time", "The current date and time in a time zone.", ClockInput, _run)
