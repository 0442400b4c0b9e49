"""Reading the reply corpus and scoring an extractor on it (shared by its test and benchmark).

Each email is scored twice, once on its HTML part and once on its text part (Graph hands the
product either, depending on the mailbox's preference and the sender's client). Two measures:

* **exact**: the extractor's visible text equals the expected new part, compared with all
  whitespace and invisible formatting characters removed;
* **kept, nothing leaked**: every line the customer wrote is in the result, and no line of the
  quoted history (nor the quoted sender's name) is.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path

from ticket_manager.content import EmailContent, text_preview

HERE = Path(__file__).resolve().parent
GROUPS = ("language", "client", "layout", "part")


@dataclass(frozen=True)
class Sample:
    """One body of one corpus email, with what must come out of it."""

    file: str
    part: str  # "html" or "text"
    body: str
    subject: str
    language: str
    client: str
    layout: str
    keep: tuple[str, ...]
    leak: tuple[str, ...]
    expected: str | None  # None: the whole body

    def group(self, name: str) -> str:
        return str(getattr(self, name))


def load_samples() -> list[Sample]:
    """Every corpus email as two samples, its HTML part and its text part."""
    manifest = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
    samples = []
    for entry in manifest:
        message = BytesParser(policy=policy.default).parsebytes((HERE / entry["file"]).read_bytes())
        for part in ("html", "text"):
            body = message.get_body(preferencelist=(("html",) if part == "html" else ("plain",)))
            samples.append(
                Sample(
                    file=entry["file"],
                    part=part,
                    body=body.get_content(),
                    subject=str(message["Subject"]),
                    language=entry["language"],
                    client=entry["client"],
                    layout=entry["layout"],
                    keep=tuple(entry["keep"]),
                    leak=tuple(entry["leak"]),
                    expected=entry["expected"],
                )
            )
    return samples


def visible(body: str, part: str) -> str:
    """What a reader sees of a body: HTML rendered to its text, text as it is."""
    if part == "html":
        return text_preview(EmailContent.from_email(body, "html"), limit=10**7)
    return body


_INVISIBLE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Text without whitespace or invisible formatting (bidi marks), case folded."""
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return _INVISIBLE.sub("", text).casefold()


@dataclass(frozen=True)
class Score:
    """How one extractor did on one sample."""

    exact: bool
    kept: bool
    leaked: bool

    @property
    def good(self) -> bool:
        """All of the customer's words kept and nothing quoted leaked."""
        return self.kept and not self.leaked


def score(sample: Sample, result_visible: str) -> Score:
    """Score the visible text an extractor returned for ``sample``."""
    got = normalise(result_visible)
    expected = sample.expected if sample.expected is not None else visible(sample.body, sample.part)
    kept = all(normalise(line) in got for line in sample.keep)
    leaked = any(normalise(line) in got for line in sample.leak)
    return Score(exact=got == normalise(expected), kept=kept, leaked=leaked)


def score_all(
    samples: Iterable[Sample], extract: Callable[[Sample], str]
) -> list[tuple[Sample, Score]]:
    """Each sample with the score of ``extract``'s visible result on it."""
    return [(sample, score(sample, extract(sample))) for sample in samples]


def accuracy(results: list[tuple[Sample, Score]], by: str | None = None) -> dict[str, dict]:
    """Shares of exact, "kept, nothing leaked" and "kept" results, overall or per group value."""
    buckets: dict[str, list[Score]] = defaultdict(list)
    for sample, result in results:
        buckets["all" if by is None else sample.group(by)].append(result)
    return {
        key: {
            "n": len(scores),
            "exact": sum(s.exact for s in scores) / len(scores),
            "good": sum(s.good for s in scores) / len(scores),
            "kept": sum(s.kept for s in scores) / len(scores),
        }
        for key, scores in sorted(buckets.items())
    }


def project_extract(sample: Sample) -> str:
    """The product's extractor, as the pipeline calls it, rendered to visible text."""
    from ticket_manager.content import new_part_of_reply

    return visible(new_part_of_reply(sample.body, sample.part, sample.subject), sample.part)
