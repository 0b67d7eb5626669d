"""``notes``: a tenant's shared notebook in the state store (create, list, search)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared.store.aio import in_thread
from shared.store.base import Note, new_id
from shared.tools.base import Tool, ToolContext, ToolFailure


class NotesInput(BaseModel):
    action: Literal["create", "list", "search"] = Field(description="What to do.")
    title: str = Field(default="", max_length=200, description="Title (create).")
    body: str = Field(default="", max_length=10_000, description="Text (create).")
    tags: list[str] = Field(default_factory=list, max_length=10, description="Tags (create).")
    query: str = Field(default="", max_length=200, description="Substring to look for (search).")


async def _run(ctx: ToolContext, args: NotesInput) -> dict[str, object]:
    if args.action == "create":
        if not args.title.strip():
            raise ToolFailure("create needs a title")
        note = Note(id=new_id("note"), tenant_id=ctx.tenant_id, title=args.title, body=args.body, tags=args.tags)
        await in_thread(ctx.store.add_note, note)
        return {"created": note.id}
    query = args.query if args.action == "search" else None
    if args.action == "search" and not query:
        raise ToolFailure("search needs a query")
    notes = await in_thread(ctx.store.list_notes, ctx.tenant_id, query, 20)
    return {"notes": [{"id": n.id, "title": n.title, "body": n.body[:500], "tags": n.tags} for n in notes]}


NOTES = Tool("notes", "Your organisation's shared notes: create one, list recent ones, or search them.",
             NotesInput, _run)
