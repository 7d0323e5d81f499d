"""An experiment's analysis as a few lines for people (`aisle experiment analyze` and the demo).

The JSON summary line and the HTML report hold everything; this is what a person reads first.
"""

from __future__ import annotations

from typing import Any

from aisle.core.console import err_console
from monitoring.experiments.analysis import p_text


def show_analysis(summary: dict[str, Any]) -> None:
    """Per-variant metrics, the primary metric's lift per treatment, SRM, guardrails, the verdict."""
    names = list(summary["variants"])
    err_console.print(f"{'':18}" + "".join(f"{n[:14]:>16}" for n in names))
    for metric in ("users", "exposures", "ctr", "add_to_cart_rate", "conversion", "revenue_per_user"):
        cells = []
        for n in names:
            v = summary["variants"][n][metric]
            text = "-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:.4f}"
            cells.append(f"{text:>16}")
        err_console.print(f"{metric:18}" + "".join(cells))
    for t, by_metric in summary["comparisons"].items():
        c = by_metric[summary["primary_metric"]]
        if c["lift"] is not None:
            band = (
                f"interval [{c['ci_low']:+.2%}, {c['ci_high']:+.2%}]"
                if c["ci_low"] is not None and c["ci_high"] is not None
                else "interval not bounded yet"
            )
            err_console.print(
                f"{t} vs {summary['control']} on {summary['primary_metric']}: lift {c['lift']:+.2%}, "
                f"{band}, {p_text(c['p_value'])}"
            )
    srm = "[red]MISMATCH[/]" if summary["srm"]["flagged"] else "ok"
    guards = "ok" if summary["guardrails"]["ok"] else "[red]breached[/]"
    err_console.print(f"sample ratio {srm}, guardrails {guards}")
    err_console.print(f"[bold]{summary['verdict']}[/]", highlight=False)
    err_console.print(f"report: {summary['html']}")
