"""The analysis of one experiment version: what each variant earned, and whether the difference is real.

Input is one row per attributed exposure (``monitoring.experiments.attribution``): who was shown what
under which variant, and whether it led to a click, a cart, a purchase and how much revenue. The
output is a JSON-able summary: per variant users, exposures, CTR, add-to-cart rate, conversion and
revenue per user; per treatment the relative lift over the control with a fixed-horizon interval and
p-value (Holm/Bonferroni across several treatments), a sequential interval that may be read every day
(``sequential``), CUPED-adjusted intervals for the per-user metrics; the sample-ratio test; guardrails;
and the cumulative lift of the primary metric over time with both bands.

Shoppers forced into a variant (QA overrides) are not part of the sample: they did not get there by
chance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np
import pandas as pd

from monitoring.experiments import sequential as seq
from monitoring.experiments.stats import (
    Estimate,
    compare,
    cuped,
    holm,
    mean_estimate,
    quantile,
    ratio_estimate,
    srm_test,
)
from serving.experiments.spec import ExperimentSpec

#: Metric name → kind. Ratios are per exposure (delta method), means are per shopper.
METRICS: Final = {
    "ctr": "ratio",
    "add_to_cart_rate": "ratio",
    "conversion": "mean",
    "revenue_per_user": "mean",
}
CUPED_METRICS: Final = ("conversion", "revenue_per_user")
TIMELINE_POINTS: Final = 24
#: Columns the analysis reads from the attributed exposures.
COLUMNS: Final = (
    "ts",
    "user_id",
    "variant",
    "clicked",
    "carted",
    "purchased",
    "revenue",
    "latency_ms",
    "degraded",
    "error",
)


@dataclass
class Users:
    """Per-shopper sums, one array each, plus the variant index of every shopper."""

    variant: np.ndarray
    exposures: np.ndarray
    clicked: np.ndarray
    carted: np.ndarray
    converted: np.ndarray
    revenue: np.ndarray

    def metric(self, name: str, mask: np.ndarray) -> Estimate:
        if name == "ctr":
            return ratio_estimate(self.clicked[mask], self.exposures[mask])
        if name == "add_to_cart_rate":
            return ratio_estimate(self.carted[mask], self.exposures[mask])
        if name == "conversion":
            return mean_estimate(self.converted[mask])
        if name == "revenue_per_user":
            return mean_estimate(self.revenue[mask])
        raise KeyError(name)

    def per_user(self, name: str) -> np.ndarray:
        return self.converted if name == "conversion" else self.revenue


def per_user(frame: pd.DataFrame, codes: np.ndarray, n_users: int, variant_of_user: np.ndarray) -> Users:
    def total(column: str) -> np.ndarray:
        return np.bincount(codes, weights=frame[column].to_numpy(dtype=float), minlength=n_users)

    return Users(
        variant=variant_of_user,
        exposures=np.bincount(codes, minlength=n_users).astype(float),
        clicked=total("clicked"),
        carted=total("carted"),
        converted=(total("purchased") > 0).astype(float),
        revenue=total("revenue"),
    )


def _guardrails(frame: pd.DataFrame, spec: ExperimentSpec) -> dict[str, Any]:
    limits = spec.guardrails
    out: dict[str, Any] = {}
    for name, rows in frame.groupby("variant", sort=False):
        latency = rows["latency_ms"].dropna().to_numpy(dtype=float)
        values = {
            "p50_latency_ms": quantile(latency, 0.5),
            "p99_latency_ms": quantile(latency, 0.99),
            "error_rate": float(rows["error"].mean()) if len(rows) else None,
            "degraded_share": float(rows["degraded"].mean()) if len(rows) else None,
        }
        breached = [
            what
            for what, value, limit in (
                ("p99_latency_ms", values["p99_latency_ms"], limits.p99_latency_ms),
                ("error_rate", values["error_rate"], limits.error_rate),
                ("degraded_share", values["degraded_share"], limits.degraded_share),
            )
            if value is not None and value > limit
        ]
        out[str(name)] = {k: (round(v, 6) if v is not None else None) for k, v in values.items()}
        out[str(name)]["breached"] = breached
    return {
        "limits": limits.model_dump(),
        "variants": out,
        "ok": not any(v["breached"] for v in out.values()),
    }


def _fraction(spec: ExperimentSpec, started_at: datetime, at: datetime | pd.Timestamp) -> float:
    return max((at - started_at).total_seconds(), 0.0) / spec.duration_seconds


def analyze(
    frame: pd.DataFrame,
    spec: ExperimentSpec,
    *,
    started_at: datetime,
    now: datetime,
    covariate: pd.Series | None = None,
    previous_looks: list[tuple[float, int]] | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Analyse attributed exposures of one experiment version (see the module doc).

    ``covariate``: pre-experiment activity per user id (missing users count 0). ``previous_looks``:
    (time fraction, users) of the analyses read before this one, for the sequential interval.
    """
    names = [v.name for v in spec.variants]
    forced = set(spec.overrides)
    frame = frame.loc[frame["variant"].isin(names) & ~frame["user_id"].isin(forced)]
    frame = frame.sort_values("ts", kind="stable")
    codes, uniques = pd.factorize(frame["user_id"], sort=False)
    variant_code = pd.Categorical(frame["variant"], categories=names).codes
    first_variant = np.full(len(uniques), -1)
    first_variant[codes[::-1]] = variant_code[::-1]  # a shopper's first exposure decides (it never changes)
    users = per_user(frame, codes, len(uniques), first_variant)
    treatments = names[1:]
    m = len(treatments)
    level_alpha = alpha / m if m > 1 else alpha
    masks = {name: users.variant == i for i, name in enumerate(names)}

    fraction = _fraction(spec, started_at, now)
    looks = [*(previous_looks or []), (fraction, len(uniques))]
    criticals = seq.critical_values([f for f, _ in looks], [float(u) for _, u in looks], level_alpha)
    critical = criticals[-1]

    cov = _covariate(covariate, uniques)
    variants_out: dict[str, Any] = {}
    for name in names:
        mask = masks[name]
        variants_out[name] = {
            "users": int(mask.sum()),
            "exposures": int(users.exposures[mask].sum()),
            **{metric: _value(users.metric(metric, mask)) for metric in METRICS},
        }

    comparisons: dict[str, Any] = {t: {} for t in treatments}
    cuped_info: dict[str, Any] = {}
    for metric in METRICS:
        control = users.metric(metric, masks[names[0]])
        results = {t: compare(users.metric(metric, masks[t]), control, level_alpha) for t in treatments}
        adjusted = (
            holm([r.p_value for r in results.values()]) if m > 1 else [r.p_value for r in results.values()]
        )
        for (t, r), p_adj in zip(results.items(), adjusted, strict=True):
            lo, hi = r.interval(critical)
            comparisons[t][metric] = {
                **r.to_dict(),
                "p_adjusted": _round(p_adj),
                "significant": bool(p_adj < alpha) if math.isfinite(p_adj) else False,
                "sequential": {
                    "ci_low": _round(lo),
                    "ci_high": _round(hi),
                    "significant": r.rejects(critical),
                },
            }
        if metric in CUPED_METRICS and cov is not None:
            cuped_info[metric] = _cuped(users, metric, cov, names, masks, comparisons, level_alpha)

    summary: dict[str, Any] = {
        "experiment": spec.key,
        "control": names[0],
        "primary_metric": spec.primary_metric,
        "alpha": alpha,
        "correction": "holm p-values, bonferroni intervals" if m > 1 else None,
        "users": len(uniques),
        "exposures": len(frame),
        "forced_users_excluded": len(forced),
        "variants": variants_out,
        "comparisons": comparisons,
        "srm": srm_test([variants_out[n]["users"] for n in names], [v.weight for v in spec.variants]),
        "guardrails": _guardrails(frame, spec),
        "sequential": {
            "method": "group-sequential, Lan-DeMets O'Brien-Fleming spending over the planned duration",
            "looks": len(looks),
            "fraction_of_plan": round(fraction, 4),
            "critical_z": _round(critical),
            "beyond_plan": fraction > 1,
        },
        "cuped": cuped_info or None,
        "timeline": timeline(frame, codes, users.variant, names, spec, started_at, level_alpha),
    }
    summary["verdict"] = verdict(summary)
    return summary


def _covariate(covariate: pd.Series | None, uniques: pd.Index) -> np.ndarray | None:
    if covariate is None:
        return None
    return covariate.reindex(uniques).fillna(0.0).to_numpy(dtype=float)


def _cuped(
    users: Users,
    metric: str,
    cov: np.ndarray,
    names: list[str],
    masks: dict[str, np.ndarray],
    comparisons: dict[str, Any],
    alpha: float,
) -> dict[str, Any]:
    y = users.per_user(metric)
    adjusted = cuped([y[masks[n]] for n in names], [cov[masks[n]] for n in names])
    control = mean_estimate(adjusted.adjusted[0])
    for i, t in enumerate(names[1:], start=1):
        r = compare(mean_estimate(adjusted.adjusted[i]), control, alpha)
        comparisons[t][metric]["cuped"] = r.to_dict()
    return {"theta": _round(adjusted.theta), "variance_reduction": _round(adjusted.variance_reduction)}


def _value(e: Estimate) -> float | None:
    return _round(e.value)


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def timeline(
    frame: pd.DataFrame,
    codes: np.ndarray,
    user_variant: np.ndarray,
    names: list[str],
    spec: ExperimentSpec,
    started_at: datetime,
    alpha: float,
    points: int = TIMELINE_POINTS,
) -> list[dict[str, Any]]:
    """Cumulative lift of the primary metric at evenly spaced times, with the fixed and sequential bands.

    The sequential band at each point is the one an experimenter looking at every point would have
    seen (the looks are the points themselves).
    """
    if frame.empty:
        return []
    ts = pd.to_datetime(frame["ts"], utc=True)
    t0, t1 = ts.iloc[0], ts.iloc[-1]
    edges = pd.date_range(t0, t1, periods=points + 1)[1:] if t1 > t0 else pd.DatetimeIndex([t1])
    stops = np.searchsorted(
        ts.to_numpy(dtype="datetime64[ns]"), edges.to_numpy(dtype="datetime64[ns]"), side="right"
    )
    n_users = len(user_variant)
    acc = {k: np.zeros(n_users) for k in ("exposures", "clicked", "carted", "purchased", "revenue")}
    values = {k: frame[k].to_numpy(dtype=float) for k in ("clicked", "carted", "purchased", "revenue")}
    rows: list[dict[str, Any]] = []
    start = 0
    for edge, stop in zip(edges, stops, strict=True):
        sl = slice(start, int(stop))
        acc["exposures"] += np.bincount(codes[sl], minlength=n_users)
        for k, v in values.items():
            acc[k] += np.bincount(codes[sl], weights=v[sl], minlength=n_users)
        start = int(stop)
        seen = acc["exposures"] > 0
        users = Users(
            variant=np.where(seen, user_variant, -1),
            exposures=acc["exposures"],
            clicked=acc["clicked"],
            carted=acc["carted"],
            converted=(acc["purchased"] > 0).astype(float),
            revenue=acc["revenue"],
        )
        row: dict[str, Any] = {"at": edge.isoformat(), "users": int(seen.sum()), "fraction": 0.0}
        row["fraction"] = round(_fraction(spec, started_at, edge), 4)
        control = users.metric(spec.primary_metric, users.variant == 0)
        row["compared"] = {
            t: compare(users.metric(spec.primary_metric, users.variant == i), control, alpha)
            for i, t in enumerate(names[1:], start=1)
        }
        rows.append(row)
    criticals = seq.critical_values([r["fraction"] for r in rows], [float(r["users"]) for r in rows], alpha)
    for row, c in zip(rows, criticals, strict=True):
        for t, r in row.pop("compared").items():
            lo, hi = r.interval(c)
            row[t] = {
                "lift": _round(r.lift),
                "ci_low": _round(r.ci[0]),
                "ci_high": _round(r.ci[1]),
                "seq_low": _round(lo),
                "seq_high": _round(hi),
            }
    return rows


def p_text(p: float | None) -> str:
    if p is None:
        return "p unknown"
    return "p<0.0001" if p < 1e-4 else f"p={p:.2g}"


def verdict(summary: dict[str, Any]) -> str:
    """One sentence per treatment on the primary metric, read from the sequential interval."""
    if summary["srm"]["flagged"]:
        return (
            "sample ratio mismatch: users per variant differ from the weights beyond chance "
            f"(p={summary['srm']['p_value']:.2g}); the assignment or logging is broken, "
            "so no result is trustworthy"
        )
    metric = summary["primary_metric"]
    parts = []
    for t, by_metric in summary["comparisons"].items():
        c = by_metric[metric]
        s = c["sequential"]
        if c["lift"] is None:
            parts.append(f"{t}: no data on {metric} yet")
        elif s["significant"]:
            word = "beats" if c["lift"] > 0 else "loses to"
            band = (
                f"sequential {s['ci_low']:+.1%} to {s['ci_high']:+.1%}, "
                if s["ci_low"] is not None and s["ci_high"] is not None
                else ""
            )
            p = p_text(c["p_value"])
            parts.append(f"{t} {word} {summary['control']} on {metric}: {c['lift']:+.1%} ({band}{p})")
        else:
            parts.append(f"{t} vs {summary['control']} on {metric}: {c['lift']:+.1%}, not yet conclusive")
    if not summary["guardrails"]["ok"]:
        bad = {v: g["breached"] for v, g in summary["guardrails"]["variants"].items() if g["breached"]}
        parts.append(f"guardrail breached: {bad}")
    return "; ".join(parts)
