"""Benchmark: how well each reply extractor finds the new part of a follow-up email.

Runs the product's ``new_part_of_reply`` and each open-source reply parser that is installed
(``quotequail``, ``mail-parser-reply``, ``email-reply-parser``, ``talon``; none of them is a
dependency of the product, install them into the venv to compare) over the reply corpus in
``tests/replies/`` (every email's HTML part and text part), and prints the share of results
that match the expected new part exactly and the share that keep all of the customer's words
and leak nothing quoted, overall and per language, client, layout and part.

    .venv/bin/python bench/replies.py [--by language,client,layout,part] [--failures project]

Libraries that read only text get the HTML part as the text Exchange makes of it. Writes
bench/results/replies.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "replies"))

from harness import machine  # noqa: E402
from scoring import (  # noqa: E402
    GROUPS,
    Sample,
    accuracy,
    load_samples,
    project_extract,
    score_all,
    visible,
)

from ticket_manager_sandbox.graph_mime import html_to_text  # noqa: E402


def _as_text(sample: Sample) -> str:
    return html_to_text(sample.body) if sample.part == "html" else sample.body


def _quotequail() -> Callable[[Sample], str]:
    import quotequail

    def extract(sample: Sample) -> str:
        if sample.part == "html":
            pieces = quotequail.quote_html(sample.body)
        else:
            pieces = quotequail.quote(sample.body)
        return visible("".join(text for shown, text in pieces if shown), sample.part)

    return extract


def _mail_parser_reply() -> Callable[[Sample], str]:
    from mailparser_reply import EmailReplyParser
    from mailparser_reply.constants import MAIL_LANGUAGES

    parser = EmailReplyParser(languages=list(MAIL_LANGUAGES))

    def extract(sample: Sample) -> str:
        return parser.parse_reply(_as_text(sample)) or ""

    return extract


def _email_reply_parser() -> Callable[[Sample], str]:
    from email_reply_parser import EmailReplyParser

    return lambda sample: EmailReplyParser.parse_reply(_as_text(sample))


def _talon() -> Callable[[Sample], str]:
    import talon
    from talon import quotations

    talon.init()
    logging.getLogger("talon").setLevel(logging.CRITICAL)

    def extract(sample: Sample) -> str:
        if sample.part == "html":
            return visible(quotations.extract_from_html(sample.body), "html")
        return quotations.extract_from_plain(sample.body)

    return extract


CANDIDATES: dict[str, Callable[[], Callable[[Sample], str]]] = {
    "project": lambda: project_extract,
    "quotequail": _quotequail,
    "mail-parser-reply": _mail_parser_reply,
    "email-reply-parser": _email_reply_parser,
    "talon": _talon,
}


def _safe(extract: Callable[[Sample], str]) -> Callable[[Sample], str]:
    """A crash of a library on one email counts as an empty result for it."""

    def run(sample: Sample) -> str:
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                return extract(sample) or ""
        except Exception:  # a library's bug on one email is its result, not the benchmark's
            return ""

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--by", default=",".join(GROUPS))
    parser.add_argument("--failures", default="", help="list the failed samples of this extractor")
    args = parser.parse_args()
    samples = load_samples()
    results: dict[str, list] = {}
    for name, make in CANDIDATES.items():
        try:
            extract = make()
        except ImportError:
            print(f"({name} is not installed: skipped)")
            continue
        results[name] = score_all(samples, _safe(extract))
    emails = len({s.file for s in samples})
    print(f"Reply corpus: {emails} emails, {len(samples)} bodies (HTML and text). {machine()}\n")
    report: dict[str, dict] = {"machine": machine(), "emails": emails, "bodies": len(samples)}
    names = list(results)
    print("| extractor | exact | kept, nothing leaked | all words kept |\n| --- | --- | --- | --- |")
    for name in names:
        overall = accuracy(results[name])["all"]
        report.setdefault("overall", {})[name] = overall
        print(f"| {name} | {overall['exact']:.1%} | {overall['good']:.1%} | {overall['kept']:.1%} |")
    for group in [g for g in args.by.split(",") if g]:
        tables = {name: accuracy(results[name], group) for name in names}
        keys = list(tables[names[0]])
        print(f"\nKept, nothing leaked (exact) per {group}:\n")
        print(f"| {group} | n | " + " | ".join(names) + " |")
        print("| --- | --- | " + " | ".join("---" for _ in names) + " |")
        for key in keys:
            cells = [f"{tables[n][key]['good']:.0%} ({tables[n][key]['exact']:.0%})" for n in names]
            print(f"| {key} | {tables[names[0]][key]['n']} | " + " | ".join(cells) + " |")
        report[group] = tables
    if args.failures in results:
        print(f"\nFailures of {args.failures}:")
        extract = _safe(CANDIDATES[args.failures]())
        for sample, result in results[args.failures]:
            if not result.good:
                got = extract(sample).replace("\n", " ")[:200]
                why = "leaked" if result.leaked else "lost words"
                print(f"  {sample.file} [{sample.part}] {why}: {got}")
    out = ROOT / "bench" / "results" / "replies.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
