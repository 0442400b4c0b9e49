"""``/boards`` and ``/categories``: what a ticket may be filed under, from the configuration."""

from __future__ import annotations

from ticket_manager.api.access import ApiBlueprint
from ticket_manager.api.runtime import settings
from ticket_manager.api.schemas import BoardListSchema, CategoryListSchema

blp = ApiBlueprint("catalog", __name__, description="Boards (JIRA_BOARDS) and categories (labels).")


@blp.route("/boards", methods=["GET"])
@blp.requires("tickets:read")
@blp.response(200, BoardListSchema)
def list_boards():
    """List the boards tickets may be filed on"""
    config = settings()
    items = []
    for board in config.boards:
        mailboxes = [m for m in config.mailboxes if config.board_for(m) == board]
        items.append(
            {
                "name": board.name,
                "setting": board.setting,
                "default": board == config.default_board,
                "mailboxes": mailboxes,
            }
        )
    return {"items": items}


@blp.route("/categories", methods=["GET"])
@blp.requires("tickets:read")
@blp.response(200, CategoryListSchema)
def list_categories():
    """List the ticket categories"""
    config = settings()
    return {
        "items": [
            {"name": c, "default": c == config.default_category} for c in config.label_categories
        ]
    }
