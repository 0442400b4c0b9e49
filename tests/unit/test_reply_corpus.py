"""The reply corpus (tests/replies/): the new part is found in every language and client."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replies"))

from scoring import GROUPS, accuracy, load_samples, project_extract, score_all

OVERALL = 0.95
PER_GROUP = 0.90


@pytest.fixture(scope="module")
def results():
    return score_all(load_samples(), project_extract)


def test_corpus_is_as_wide_as_promised(results) -> None:
    # At least 150 emails, 20 languages, 12 clients, and every layout in HTML and text.
    files = {sample.file for sample, _ in results}
    assert len(files) >= 150
    assert len(accuracy(results, "language")) >= 20
    assert len(accuracy(results, "client")) >= 12
    assert set(accuracy(results, "layout")) == {"top", "bottom", "inline", "forward"}
    assert set(accuracy(results, "part")) == {"html", "text"}


def test_customer_words_kept_and_nothing_quoted_leaks_overall(results) -> None:
    # At least 95 % of all bodies keep every word written and leak no quoted line.
    failed = [f"{s.file} [{s.part}]" for s, score in results if not score.good]
    assert accuracy(results)["all"]["good"] >= OVERALL, failed


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_reaches_the_threshold(results, group: str) -> None:
    # At least 90 % in every language, client, layout and body type.
    shares = {key: value["good"] for key, value in accuracy(results, group).items()}
    assert {key: share for key, share in shares.items() if share < PER_GROUP} == {}


def test_customer_words_are_never_lost(results) -> None:
    # Whatever else happens, no body loses a line the customer wrote.
    lost = [f"{s.file} [{s.part}]" for s, score in results if not score.kept]
    assert lost == []
