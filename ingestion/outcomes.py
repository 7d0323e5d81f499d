"""Whether an ingestion job did what it was asked, and if not, one sentence that says why and what to do.

The rule is the same for files, imports and the stream: a batch that was refused, or of which no row
passed the gate, fails the job (exit 1), and so does an input that held no rows at all. Rows that the
lake already held count as done: importing the same file twice is a success that adds nothing. The
sentence names the top quarantine reasons with their counts and the setting or step that would help.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.settings import Settings

REFUSAL_PREFIX: Final = "batch refused ("
PASSED: Final = "row passed its checks"  # what a good row of a refused batch says
TOP: Final = 3

#: What a user can do about the commonest reasons (matched on the start of the reason).
ADVICE: Final = {
    "ts before the shop opened": "set AISLE_SHOP_OPENED_AT earlier if these events are real",
    "ts in the future": "check the producer's clock and the timestamp unit (epoch seconds vs milliseconds)",
    "item_id not in catalog": "ingest the catalog first (or pass --catalog), or add the missing items",
    "missing column": "rename the columns to the event schema (event_id, event_type, user_id, item_id, ts) "
    "or use `aisle data import` for interaction exports",
    "malformed JSON": "JSON Lines needs one object per line (a JSON array or pretty-printed JSON is not "
    "JSON Lines)",
    "event_type not in allowed set": "map the event types to view, add_to_cart, remove_from_cart, purchase, "
    "wishlist, rating or click",
}


def reason_counts(rejected: pa.Table) -> Counter[str]:
    """How often each reason occurs among rejected rows. A row failing two checks counts for both; the
    prefix a refused batch adds to every reason is dropped, and so is a good row's "passed" note."""
    counts: Counter[str] = Counter()
    if rejected.num_rows == 0:
        return counts
    for item in pc.value_counts(rejected["reason"]).to_pylist():
        text, n = item["values"] or "", item["counts"]
        if text.startswith(REFUSAL_PREFIX):
            text = text.split("): ", 1)[1] if "): " in text else text
        for reason in text.split("; "):
            if reason and reason != PASSED:
                counts[reason] += n
    return counts


def top_reasons(counts: Mapping[str, int], n: int = TOP) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n])


def reasons_text(counts: Mapping[str, int]) -> str:
    top = top_reasons(counts)
    return ", ".join(f"{reason} ×{n:,}" for reason, n in top.items()) or "no reason recorded"


def advice(counts: Mapping[str, int]) -> list[str]:
    hints = []
    for reason in top_reasons(counts):
        for start, hint in ADVICE.items():
            if reason.startswith(start) and hint not in hints:
                hints.append(hint)
    return hints


def batch_problem(
    what: str,
    *,
    read: int,
    passed: int,
    refused: bool,
    failure_rate: float,
    reasons: Mapping[str, int],
    settings: Settings,
    written: bool = True,
) -> str | None:
    """None when the batch did its job; otherwise why not, with the top reasons and what to do.

    ``passed`` counts rows the gate let through, whether the lake took them as new or already had them.
    """
    if read == 0:
        return f"{what}: no rows to ingest"
    hints = advice(reasons)
    quarantine = (
        f"the rows are in quarantine under {settings.paths.quarantine}" if written else "nothing was written"
    )
    if refused:
        limit = settings.max_failure_rate
        hints.append(f"or raise AISLE_MAX_FAILURE_RATE (now {limit:g}) to let the good rows through")
        return (
            f"{what}: refused whole, {failure_rate:.0%} of {read:,} rows failed validation (more than "
            f"AISLE_MAX_FAILURE_RATE {limit:g}); top reasons: {reasons_text(reasons)}; "
            f"{'; '.join(hints)}; {quarantine}"
        )
    if passed == 0:
        return (
            f"{what}: no row passed validation ({read:,} read); top reasons: {reasons_text(reasons)}; "
            f"{'; '.join([*hints, quarantine])}"
        )
    return None


def job_problem(problems: Iterable[str | None], what: str, total: int) -> str | None:
    """One sentence for a job made of several batches (files): how many failed, and each one's story."""
    failed = [p for p in problems if p]
    if not failed:
        return None
    if total == 1:
        return failed[0]
    return f"{what}: {len(failed)} of {total} inputs not ingested. " + " | ".join(failed)
