"""In-memory stand-ins for the Graph and Jira clients, with the real clients' method names.

For unit tests of the pipeline's decisions: what it asks of Graph and Jira, and what it does
with the answers, without a server. Every call is recorded in ``calls`` so a test can count the
work. The emulators (tests/integration) remain the check that the real clients speak the wire
formats; a method added to a real client that the pipeline calls is added here too.
"""

from __future__ import annotations

import itertools
from datetime import datetime

from ticket_manager.graph.client import MailboxIdentity
from ticket_manager.graph.messages import FileAttachment, MailMessage
from ticket_manager.jira.client import JiraUser


class FakeGraph:
    """Messages of one or more mailboxes held in memory (GraphClient's method names)."""

    def __init__(self) -> None:
        self.messages: dict[tuple[str, str], MailMessage] = {}
        self.attachments: dict[tuple[str, str], list[FileAttachment]] = {}
        self.marks: dict[tuple[str, str], dict] = {}
        self.folders: dict[str, str] = {}
        self.calls: list[str] = []

    def add(self, message: MailMessage) -> MailMessage:
        self.messages[(message.mailbox, message.id)] = message
        return message

    def resolve_mailbox(self, mailbox: str) -> MailboxIdentity:
        """Every mailbox is its own address here (no UPN, no aliases)."""
        address = mailbox.lower()
        return MailboxIdentity(mailbox, address, address, address, frozenset({address}))

    def own_addresses(self, mailboxes: tuple[str, ...] | list[str]) -> frozenset[str]:
        return frozenset(m.lower() for m in mailboxes)

    def get_message(self, mailbox: str, message_id: str) -> MailMessage:
        self.calls.append("get_message")
        return self.messages[(mailbox, message_id)]

    def list_attachments(
        self, mailbox: str, message_id: str, *, max_size: int | None = None
    ) -> list[FileAttachment]:
        self.calls.append("list_attachments")
        return list(self.attachments.get((mailbox, message_id), []))

    def mark_message(
        self, mailbox: str, message_id: str, *, categories: list[str], is_read: bool | None
    ) -> None:
        self.calls.append("mark_message")
        self.marks[(mailbox, message_id)] = {"categories": categories, "is_read": is_read}

    def move_message(self, mailbox: str, message_id: str, folder_id: str) -> str:
        self.calls.append("move_message")
        return message_id

    def find_folder_id(self, mailbox: str, name: str) -> str | None:
        self.calls.append("find_folder_id")
        return self.folders.get(name)


class NoServiceDesks:
    """A site without Jira Service Management (JiraClient.service_desks' method names)."""

    def for_project(self, project_key: str) -> None:
        return None


class FakeJira:
    """Issues and comments held in memory (JiraClient's method and attribute names)."""

    def __init__(self, projects: dict[str, str] | None = None, *, is_cloud: bool = True) -> None:
        self.is_cloud = is_cloud  # ADF bodies on Cloud, wiki markup on Server
        self.projects = projects or {"support": "SUP"}
        self.issues: dict[str, dict] = {}
        self.comments: dict[str, list[dict]] = {}
        self.users: dict[str, JiraUser] = {}
        self.calls: list[str] = []
        self._numbers = itertools.count(1)
        self.service_desks = NoServiceDesks()

    def create_screen(self, project_key: str, issue_type: str) -> None:
        """No create screen read: the fields are sent as they are (as on older Data Center)."""
        self.calls.append("create_screen")
        return None

    def attachment_limit(self) -> int | None:
        return None

    def watchers(self, key: str) -> list[JiraUser]:
        self.calls.append("watchers")
        return []

    def project_key_for_board(self, board_name: str) -> str:
        self.calls.append("project_key_for_board")
        return self.projects[board_name]

    def find_user(self, email: str) -> JiraUser | None:
        self.calls.append("find_user")
        return self.users.get(email.lower())

    def user_reference(self, user: JiraUser) -> dict:
        return {"accountId": user.account_id}

    def create_issue(self, fields: dict, properties: dict[str, dict]) -> str:
        self.calls.append("create_issue")
        key = f"{fields['project']['key']}-{next(self._numbers)}"
        self.issues[key] = {"fields": fields, "properties": properties, "attachments": []}
        return key

    def find_issue_with_property(
        self, project_key: str, created_since: datetime, property_key: str, match: dict
    ) -> str | None:
        self.calls.append("find_issue_with_property")
        for key, issue in self.issues.items():
            found = issue["properties"].get(property_key, {})
            if key.startswith(f"{project_key}-") and all(
                found.get(k) == v for k, v in match.items()
            ):
                return key
        return None

    def add_comment(self, key: str, body: dict | str, properties: dict[str, dict]) -> str:
        self.calls.append("add_comment")
        comments = self.comments.setdefault(key, [])
        comments.append({"body": body, "properties": properties})
        return str(len(comments))

    def find_comment_with_property(self, key: str, property_key: str, match: dict) -> str | None:
        self.calls.append("find_comment_with_property")
        for number, comment in enumerate(self.comments.get(key, []), start=1):
            found = comment["properties"].get(property_key, {})
            if all(found.get(k) == v for k, v in match.items()):
                return str(number)
        return None

    def attachments_present(self, key: str) -> set[tuple[str, int]]:
        self.calls.append("attachments_present")
        return {(name, size) for name, size in self.issues[key]["attachments"]}

    def add_attachments(self, key: str, files: list[tuple[str, bytes, str]]) -> None:
        self.calls.append("add_attachments")
        self.issues[key]["attachments"].extend((name, len(data)) for name, data, _ in files)

    def add_watcher(self, key: str, user: JiraUser) -> None:
        self.calls.append("add_watcher")
