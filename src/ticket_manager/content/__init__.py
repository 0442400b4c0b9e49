"""Email bodies turned into Jira content that cannot inject markup: ADF for Cloud, wiki for Server.

``EmailContent.from_email`` parses an email body (HTML or plain text), and
``EmailContent.from_text`` a REST API body (Markdown or plain text), into a small document tree;
``to_adf`` and ``to_wiki`` render it, escaping everything that came from the email.
``jira_to_email`` goes the other way (a Jira comment as safe email HTML and text), and
``new_part_of_reply`` keeps only what a follow-up email adds. See docs/content.md for the rules.
"""

from ticket_manager.content.adf import ADF_MAX_CHARS, adf_size, to_adf
from ticket_manager.content.document import (
    MAX_NESTING,
    TRUNCATION_NOTE,
    EmailContent,
    summary_from_subject,
    text_preview,
)
from ticket_manager.content.markdown import markdown_to_blocks
from ticket_manager.content.outbound import RenderedComment, jira_to_email
from ticket_manager.content.replies import new_part_of_reply
from ticket_manager.content.wiki import WIKI_MAX_CHARS, escape_text, to_wiki

__all__ = [
    "ADF_MAX_CHARS",
    "MAX_NESTING",
    "TRUNCATION_NOTE",
    "WIKI_MAX_CHARS",
    "EmailContent",
    "RenderedComment",
    "adf_size",
    "escape_text",
    "jira_to_email",
    "markdown_to_blocks",
    "new_part_of_reply",
    "summary_from_subject",
    "text_preview",
    "to_adf",
    "to_wiki",
]
