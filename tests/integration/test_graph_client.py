"""The product's Graph client and sign-in, over real HTTPS against the emulators."""

from __future__ import annotations

import pytest

from ticket_manager.config import load_settings
from ticket_manager.graph.auth import TokenProvider
from ticket_manager.graph.client import GraphClient
from ticket_manager.graph.errors import (
    DeltaTokenExpiredError,
    GraphAuthError,
    GraphUnavailableError,
    SignInError,
)
from ticket_manager.http import build_session

MAILBOX = "support@example.com"


@pytest.fixture
def settings(sandbox_env):
    return load_settings(sandbox_env)


@pytest.fixture
def graph(settings):
    session = build_session(settings.ca_bundle)
    tokens = TokenProvider(settings, session)
    return GraphClient(settings.graph_url, tokens.access_token, session, max_attempts=3)


def deliver_many(sandbox, count: int) -> list[str]:
    return [
        sandbox.graph.deliver(
            MAILBOX,
            subject=f"Printer {n} is jammed",
            body="Please help",
            sender=f"u{n}@example.com",
        )
        for n in range(count)
    ]


def test_msal_gets_an_app_only_token_over_https_and_caches_it(sandbox, settings):
    # MSAL, through the product's TokenProvider, signs in at the emulated identity platform.
    tokens = TokenProvider(settings, build_session(settings.ca_bundle))
    first = tokens.access_token()
    second = tokens.access_token()
    assert first == second
    claims = sandbox.identity.validate_access_token(first)
    assert claims is not None
    assert "Mail.ReadWrite" in claims["roles"]
    assert sandbox.identity.controls.counts["POST /<tenant>/oauth2/v2.0/token"] == 1


def test_a_wrong_client_secret_is_reported_with_advice(sandbox_env):
    # A bad secret gives a SignInError that tells the user which keys to check.
    settings = load_settings({**sandbox_env, "O365_CLIENT_SECRET": "wrong"})
    tokens = TokenProvider(settings, build_session(settings.ca_bundle))
    with pytest.raises(SignInError) as caught:
        tokens.access_token()
    assert caught.value.error == "invalid_client"
    assert "O365_CLIENT_SECRET" in str(caught.value)
    assert "wrong" not in str(caught.value)


def test_delta_sync_pages_to_a_delta_link_and_resumes_from_it(sandbox, graph):
    # 25 messages in pages of 10 arrive in three pages; the delta link then brings only news.
    deliver_many(sandbox, 25)
    pages = list(graph.delta_pages(MAILBOX, page_size=10))
    assert [len(p.messages) for p in pages] == [10, 10, 5]
    assert all(p.next_link for p in pages[:-1]) and pages[-1].delta_link
    assert pages[-1].next_link is None
    subjects = {m.subject for p in pages for m in p.messages}
    assert len(subjects) == 25
    message = pages[0].messages[0]
    assert message.internet_message_id.startswith("<")
    assert message.from_.address.endswith("@example.com")
    assert message.body.strip() == "Please help"
    assert message.header("message-id") == message.internet_message_id

    new_id = sandbox.graph.deliver(MAILBOX, subject="Another", body="x", sender="z@example.com")
    again = list(graph.delta_pages(MAILBOX, delta_link=pages[-1].delta_link, page_size=10))
    # Every call asks for immutable ids, so the id is the immutable form.
    assert [m.id for p in again for m in p.messages] == [
        sandbox.graph.immutable_id(MAILBOX, new_id)
    ]
    assert again[-1].delta_link


def test_an_expired_delta_token_asks_for_a_full_sync(sandbox, graph):
    # Graph's 410 for a lost sync state becomes DeltaTokenExpiredError, not a crash.
    deliver_many(sandbox, 2)
    delta_link = list(graph.delta_pages(MAILBOX))[-1].delta_link
    sandbox.graph.expire_delta_tokens(MAILBOX)
    with pytest.raises(DeltaTokenExpiredError) as caught:
        list(graph.delta_pages(MAILBOX, delta_link=delta_link))
    assert caught.value.status == 410


def test_throttling_is_retried_after_the_time_graph_asks(sandbox, settings):
    # Two 429s with Retry-After: 1 are waited out, and the third try succeeds.
    deliver_many(sandbox, 1)
    sandbox.graph.controls.fail_next(2, status=429, retry_after=1, path_contains="/delta")
    session = build_session(settings.ca_bundle)
    waits: list[float] = []
    graph = GraphClient(
        settings.graph_url,
        TokenProvider(settings, session).access_token,
        session,
        sleep=waits.append,
    )
    pages = list(graph.delta_pages(MAILBOX))
    assert waits == [1, 1]
    assert len(pages[0].messages) == 1
    statuses = [r.status for r in sandbox.graph.controls.requests if "delta" in r.path]
    assert statuses == [429, 429, 200]


def test_a_throttled_call_waits_out_more_429s_than_its_attempts(sandbox, graph):
    # Under a mailbox's request quota, a 429 that says when to come back spends no attempt:
    # five of them in a row (the client makes three attempts) are waited out, and the call
    # succeeds; a 429 without Retry-After counts as a failed attempt.
    deliver_many(sandbox, 1)
    sandbox.graph.controls.fail_next(5, status=429, retry_after=1, path_contains="/delta")
    pages = list(graph.delta_pages(MAILBOX))
    assert len(pages[0].messages) == 1
    statuses = [r.status for r in sandbox.graph.controls.requests if "delta" in r.path]
    assert statuses == [429] * 5 + [200]

    sandbox.graph.controls.reset_log()
    sandbox.graph.controls.fail_next(5, status=429, retry_after=None, path_contains="/users")
    with pytest.raises(GraphUnavailableError) as caught:
        graph.get_folder(MAILBOX)
    assert caught.value.status == 429
    assert [r.status for r in sandbox.graph.controls.requests] == [429] * 3


def test_throttling_past_the_retry_budget_raises_with_the_advice(sandbox, graph):
    # When Graph keeps refusing, the caller gets GraphUnavailableError with Retry-After.
    sandbox.graph.controls.fail_next(5, status=503, retry_after=1, path_contains="/users")
    with pytest.raises(GraphUnavailableError) as caught:
        graph.get_folder(MAILBOX)
    assert caught.value.status == 503
    assert caught.value.retry_after == 1


def test_a_refused_token_is_an_auth_error(sandbox, settings):
    # A token Graph does not accept is reported as GraphAuthError, not retried.
    client = GraphClient(
        settings.graph_url, lambda: "not-a-token", build_session(settings.ca_bundle)
    )
    with pytest.raises(GraphAuthError) as caught:
        client.get_folder(MAILBOX)
    assert caught.value.status == 401
