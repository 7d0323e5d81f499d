"""The analysis as a self-contained HTML page: tables, the verdict, and the cumulative lift over time.

One file with the plots inlined as SVG, so it opens from disk, attaches to a ticket and needs nothing
from the network. The plot shows, per treatment, the cumulative relative lift of the primary metric with
the fixed-horizon band (valid only at the planned end) and the wider sequential band (valid at every
point); a line that leaves the sequential band's zero is a result, one that only leaves the fixed band
early is the peeking trap.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

METRIC_LABELS = {
    "ctr": "CTR",
    "add_to_cart_rate": "add-to-cart rate",
    "conversion": "conversion",
    "revenue_per_user": "revenue per user",
}


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:+.2%}" if signed else f"{x:.2%}"


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def lift_plot_svg(summary: dict[str, Any]) -> str:
    """Cumulative lift of the primary metric over time, one panel per treatment, as inline SVG."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "aisle"  # stable element ids: the same data gives the same page
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import pandas as pd

    timeline = summary.get("timeline") or []
    treatments = list(summary["comparisons"])
    fig, axes = plt.subplots(len(treatments), 1, figsize=(8, 3.2 * max(len(treatments), 1)), squeeze=False)
    for ax, t in zip(axes[:, 0], treatments, strict=True):
        rows = [r for r in timeline if r.get(t, {}).get("lift") is not None]
        if not rows:
            ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
            continue
        at = pd.to_datetime([r["at"] for r in rows])

        def col(key: str, rows: list[dict[str, Any]] = rows, t: str = t) -> list[float]:
            return [float("nan") if r[t][key] is None else r[t][key] * 100 for r in rows]

        ax.fill_between(
            at, col("seq_low"), col("seq_high"), color="#9ecae1", alpha=0.5, label="sequential band"
        )
        ax.fill_between(
            at, col("ci_low"), col("ci_high"), color="#3182bd", alpha=0.35, label="fixed-horizon band"
        )
        ax.plot(at, col("lift"), color="#08306b", lw=1.8, label="cumulative lift")
        ax.axhline(0, color="black", lw=0.8)
        # early points rest on few shoppers and their bands are huge: scale to the later two thirds'
        # fixed band and let the earlier and the sequential bands overflow
        later = rows[len(rows) // 3 :]
        fixed = [v for v in col("ci_low", later) + col("ci_high", later) if v == v]
        if fixed:
            span = max(max(fixed) - min(fixed), 1.0)
            ax.set_ylim(min(min(fixed), 0) - 0.5 * span, max(max(fixed), 0) + 0.5 * span)
        ax.set_ylabel(f"lift of {METRIC_LABELS.get(summary['primary_metric'], summary['primary_metric'])}, %")
        ax.set_title(f"{t} vs {summary['control']}")
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})  # same data, same bytes
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def render(summary: dict[str, Any], title: str | None = None) -> str:
    """The HTML page for one analysis summary."""
    e = html.escape
    names = list(summary["variants"])
    head = "".join(f"<th>{e(n)}{' (control)' if n == summary['control'] else ''}</th>" for n in names)
    rows = []
    for key, label in [("users", "users"), ("exposures", "exposures")]:
        cells = "".join(f"<td>{summary['variants'][n][key]:,}</td>" for n in names)
        rows.append(f"<tr><td>{label}</td>{cells}</tr>")
    for metric, label in METRIC_LABELS.items():
        fmt = _num if metric == "revenue_per_user" else _pct
        cells = "".join(f"<td>{fmt(summary['variants'][n][metric])}</td>" for n in names)
        rows.append(f"<tr><td>{label}</td>{cells}</tr>")
    comparisons = []
    for t, by_metric in summary["comparisons"].items():
        for metric, c in by_metric.items():
            s, cu = c["sequential"], c.get("cuped")
            cuped = f"{_pct(cu['ci_low'], True)} … {_pct(cu['ci_high'], True)}" if cu else "–"
            mark = (
                " class='win'"
                if c["significant"] and (c["lift"] or 0) > 0
                else (" class='loss'" if c["significant"] else "")
            )
            comparisons.append(
                f"<tr{mark}><td>{e(t)}</td><td>{METRIC_LABELS[metric]}</td><td>{_pct(c['lift'], True)}</td>"
                f"<td>{_pct(c['ci_low'], True)} … {_pct(c['ci_high'], True)}</td>"
                f"<td>{_num(c['p_value'], 4)}</td><td>{_num(c['p_adjusted'], 4)}</td>"
                f"<td>{_pct(s['ci_low'], True)} … {_pct(s['ci_high'], True)}</td><td>{cuped}</td></tr>"
            )
    guard = summary["guardrails"]
    guard_rows = "".join(
        f"<tr><td>{e(n)}</td><td>{_num(g['p99_latency_ms'], 1)}</td><td>{_pct(g['error_rate'])}</td>"
        f"<td>{_pct(g['degraded_share'])}</td><td>{e(', '.join(g['breached']) or 'ok')}</td></tr>"
        for n in names
        if (g := guard["variants"].get(n)) is not None
    )
    srm = summary["srm"]
    seq = summary["sequential"]
    attribution = summary.get("attribution") or {}
    title = title or f"Experiment {summary['experiment']}"
    metric = e(METRIC_LABELS.get(summary["primary_metric"], summary["primary_metric"]))
    widened = " (Bonferroni-widened)" if summary.get("correction") else ""
    overrun = (
        ", past the plan: looking further spends error that was not budgeted" if seq["beyond_plan"] else ""
    )
    guard_head = "<th>p99 latency, ms</th><th>error rate</th><th>degraded share</th><th>breached</th>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }}
td, th {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
tr.win td {{ background: #e5f5e0; }} tr.loss td {{ background: #fee0d2; }}
.verdict {{ font-size: 1.1rem; padding: 0.8rem; background: #f0f0f0; border-left: 4px solid #3182bd; }}
.small {{ color: #666; font-size: 0.9rem; }}
</style></head><body>
<h1>{e(title)}</h1>
<p class="small">version {e(str(summary.get("version", "?")))} · status {e(str(summary.get("status", "?")))} ·
started {e(str(summary.get("started_at", "?")))} · analysed {e(str(summary.get("analysed_at", "?")))} ·
primary metric {metric} · α = {summary["alpha"]}</p>
<p class="verdict">{e(summary["verdict"])}</p>
<h2>Variants</h2>
<table><tr><th></th>{head}</tr>{"".join(rows)}</table>
<h2>Lift over the control</h2>
<table><tr><th>variant</th><th>metric</th><th>lift</th><th>interval</th><th>p</th><th>p adjusted</th>
<th>sequential interval</th><th>CUPED interval</th></tr>{"".join(comparisons)}</table>
<p class="small">Intervals are Fieller's at {1 - summary["alpha"]:.0%}{widened};
the sequential interval may be read at any look (look {seq["looks"]},
{seq["fraction_of_plan"]:.0%} of the planned duration{overrun}).
CUPED uses each shopper's activity before the start.</p>
<h2>Cumulative lift over time</h2>
{lift_plot_svg(summary)}
<h2>Sample ratio</h2>
<p>users per variant {srm["observed"]} vs expected {srm["expected"]}: χ² p = {_num(srm["p_value"], 4)}
— {"<b>mismatch: do not trust this experiment</b>" if srm["flagged"] else "consistent with the weights"}.</p>
<h2>Guardrails</h2>
<table><tr><th>variant</th>{guard_head}</tr>
{guard_rows}</table>
<p class="small">limits: {e(str(guard["limits"]))}</p>
<h2>Attribution</h2>
<p class="small">{e(", ".join(f"{k}: {v}" for k, v in attribution.items()) or "not recorded")}</p>
</body></html>
"""


def write(summary: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(render(summary), encoding="utf-8")
    tmp.replace(path)
    return path
