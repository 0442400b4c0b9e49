"""A handful of realistic emails for the demo: plain, HTML with an attachment, and two to refuse."""

from __future__ import annotations

from ticket_manager_sandbox.graph import GraphEmulator

# A 1x1 PNG: small enough to read, real enough for any image viewer.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def deliver_samples(graph: GraphEmulator, mailbox: str) -> list[str]:
    """Put the demo's sample emails in ``mailbox``; returns their Graph ids."""
    return [
        graph.deliver(
            mailbox,
            subject="Printer on the 3rd floor is jammed",
            body="Hello,\n\nthe printer next to room 3.14 shows error E-42 since this morning.\n\n"
            "Thanks,\nAlice",
            sender="Alice Martin <alice@example.com>",
        ),
        graph.deliver(
            mailbox,
            subject="[bug] Login page answers 500",
            body="<p>Since the release, the login page fails:</p>"
            "<ol><li>open <a href='https://app.example.com/login'>the login page</a></li>"
            "<li>type any password</li></ol><p>Screenshot attached.</p><p>Bob</p>",
            html=True,
            sender="Bob Stone <bob@example.com>",
            cc=["carol@example.com"],
            importance="high",
            attachments=[("screenshot.png", PIXEL_PNG, "image/png")],
        ),
        graph.deliver(
            mailbox,
            subject="Automatic reply: Printer on the 3rd floor is jammed",
            body="I am out of the office until Monday.",
            sender="Dave Out <dave@example.com>",
            headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
        ),
        graph.deliver(
            mailbox,
            subject="You won a prize",
            body="Click here.",
            sender="Prize Desk <winner@prizes.example.org>",
        ),
    ]
