"""``tickets``: the tenant's support tickets (create, update, list)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared.store.aio import in_thread
from shared.store.base import Ticket, new_id
from shared.tools.base import Tool, ToolContext, ToolFailure


class TicketsInput(BaseModel):
    action: Literal["create", "update", "list"] = Field(description="What to do.")
    ticket_id: str = Field(default="", max_length=64, description="Ticket to update.")
    subject: str = Field(default="", max_length=200, description="Subject (create).")
    body: str = Field(default="", max_length=10_000, description="Description (create).")
    status: Literal["open", "pending", "resolved", "closed"] | None = Field(default=None, description="New status.")
    priority: Literal["low", "normal", "high", "urgent"] | None = Field(default=None, description="Priority.")


async def _run(ctx: ToolContext, args: TicketsInput) -> dict[str, object]:
    store = ctx.store
    if args.action == "create":
        if not args.subject.strip():
            raise ToolFailure("create needs a subject")
        ticket = Ticket(id=new_id("tkt"), tenant_id=ctx.tenant_id, subject=args.subject, body=args.body,
                        priority=args.priority or "normal")
        await in_thread(store.create_ticket, ticket)
        return {"created": ticket.id}
    if args.action == "update":
        changes = {k: v for k, v in (("status", args.status), ("priority", args.priority)) if v}
        try:
            ticket = await in_thread(store.update_ticket, ctx.tenant_id, args.ticket_id, changes)
        except KeyError:
            raise ToolFailure(f"no ticket {args.ticket_id!r}") from None
        return {"updated": ticket.id, "status": ticket.status, "priority": ticket.priority}
    tickets = await in_thread(store.list_tickets, ctx.tenant_id, args.status, 20)
    return {"tickets": [{"id": t.id, "subject": t.subject, "status": t.status, "priority": t.priority}
                        for t in tickets]}


TICKETS = Tool("tickets", "Support tickets: create one, update its status or priority, or list them.",
               TicketsInput, _run)
