"""One monitoring report: every concern for one pair of windows, saved as snapshots, summarised as JSON.

Concerns: drift of the event stream, of the user and item feature tables and of the served scores;
recommendation quality from exposures and outcomes (with the champion's offline NDCG beside its online
quality); the lake's quarantine rates; the service's guardrails. A concern without enough data in a
window is skipped with the reason, never silently: the summary says what was judged and what was not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from ingestion.exposures import read_exposures
from ingestion.lake import EventLake
from monitoring import frames, guardrails, quality, workspace
from monitoring.attribution import attribute
from monitoring.drift import Thresholds, run_drift
from monitoring.lake_quality import lake_quality, logged_values
from monitoring.windows import Windows, day_end

Step = Callable[[str], None]
STAGES = ("events", "features", "exposures", "quality", "lake", "dashboards")


def latest_as_of(settings: Settings) -> datetime:
    """The end of the newest day that holds events (the default end of the current window)."""
    lake = EventLake(settings.paths.lake)
    parts = lake.parts()
    if not parts:
        raise BadInput(
            f"the event lake at {settings.paths.lake} is empty; ingest events first "
            "(`aisle ingest batch`, `aisle demo`)"
        )
    newest = max(p.parent.name.split("=", 1)[1] for p in parts)
    day = datetime.fromisoformat(newest).replace(tzinfo=UTC)
    table = lake.read_range("ts", day, day + timedelta(days=1), columns=["ts"])
    if table.num_rows == 0:
        return day + timedelta(days=1)
    return day_end(pd.Timestamp(table["ts"].to_pandas().max()).to_pydatetime())


def _enough(cur: frames.Frame, ref: frames.Frame, minimum: int) -> str | None:
    if cur.rows < minimum or ref.rows < minimum:
        return f"too few rows to judge drift (current {cur.rows}, reference {ref.rows}; need {minimum} each)"
    return None


class Reporter:
    """Builds the concerns of one report into one workspace (reused across back-filled days)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ws = workspace.workspace(settings.paths.evidently_workspace)
        self.thresholds = Thresholds.from_settings(settings)
        self.catalog = frames.catalog_frame(settings.paths.lake)

    def _drift(
        self, concern: str, cur: frames.Frame, ref: frames.Frame, w: Windows, tag: str
    ) -> dict[str, Any]:
        skipped = _enough(cur, ref, self.settings.monitor_min_rows)
        base = {"rows": {"current": cur.rows, "reference": ref.rows}}
        if skipped:
            return {**base, "skipped": skipped}
        snapshot, summary = run_drift(
            ref.data,
            cur.data,
            cur.columns,
            self.thresholds,
            min_values=self.settings.monitor_min_rows,
            slice_length=w.window,
            timestamp=w.current_start,
            tags=[tag],
            metadata={"as_of": w.as_of.isoformat()},
        )
        summary["snapshot"] = workspace.add_run(self.ws, concern, snapshot)
        return {**base, **summary}

    def events(self, w: Windows) -> dict[str, Any]:
        lake, n = self.settings.paths.lake, self.settings.monitor_max_rows
        cur = frames.event_frame(lake, w.current_start, w.as_of, n, self.catalog)
        ref = frames.event_frame(lake, w.reference_start, w.current_start, n, self.catalog)
        return self._drift("events", cur, ref, w, "events")

    def features(self, w: Windows) -> dict[str, dict[str, Any]]:
        root, n = self.settings.paths.features, self.settings.monitor_max_rows
        out = {}
        for table in frames.FEATURE_TABLES:
            cur = frames.feature_frame(root, table, w.current_start, w.as_of, n)
            ref = frames.feature_frame(root, table, w.reference_start, w.current_start, n)
            out[table] = self._drift("features", cur, ref, w, table)
        return out

    def scores(self, w: Windows, cur_exp: Any, ref_exp: Any) -> dict[str, Any]:
        n = self.settings.monitor_max_rows
        return self._drift(
            "scores", frames.score_frame(cur_exp, n), frames.score_frame(ref_exp, n), w, "scores"
        )

    def quality(self, w: Windows, cur_exp: Any, ref_exp: Any) -> dict[str, Any]:
        """Quality of both windows (the reference is what a drop is measured against)."""
        s = self.settings
        if cur_exp.num_rows == 0:
            return {"skipped": "no exposures in the current window (is the service logging to the lake?)"}
        window = timedelta(hours=s.monitor_attribution_hours)
        columns = ["event_type", "user_id", "item_id", "ts", "request_id"]
        lake = EventLake(s.paths.lake)
        catalog_items = [str(i) for i in self.catalog.index] or None
        history = lake.read_range(
            "ts", w.reference_start, w.current_start, columns=["item_id", "ts"]
        ).to_pandas()
        items = catalog_items or sorted(history["item_id"].astype(str).unique())
        shares, floor, pct = quality.popularity(history, items)
        category = {str(i): str(c) for i, c in self.catalog["top_category"].dropna().items()}
        out: dict[str, Any] = {"k": s.monitor_k}
        for name, exp, start, end in (
            ("current", cur_exp, w.current_start, w.as_of),
            ("reference", ref_exp, w.reference_start, w.current_start),
        ):
            started = time.perf_counter()
            events = lake.read_range("ts", start, end + window, columns=columns).to_pandas()
            joined = attribute(exp, events, window)
            per = quality.per_exposure(joined.positions, s.monitor_k, category, shares, floor, pct)
            out[name] = {
                "join": {**joined.counts(), "seconds": round(time.perf_counter() - started, 3)},
                "series": quality.summarize(per, items),
            }
        out["drops"] = quality.quality_drops(
            out["current"]["series"],
            out["reference"]["series"],
            s.monitor_quality_tolerance,
            s.monitor_min_exposures,
        )
        out["offline_vs_online"] = offline_vs_online(s, out["current"]["series"], s.monitor_k)
        out["snapshot"] = self._log_quality(out, w)
        return out

    def _log_quality(self, out: dict[str, Any], w: Windows) -> str:
        from evidently.tests import gte

        from monitoring.metrics import values_dataset, values_report

        k, tol = out["k"], self.settings.monitor_quality_tolerance
        values: dict[tuple[str, str], float] = {}
        tests: dict[tuple[str, str], list[Any]] = {}
        reference = out["reference"]["series"]
        for series, stats in out["current"]["series"].items():
            values[("exposures", series)] = stats["exposures"]
            for stat in quality.STATS:
                values[(f"{stat}@{k}", series)] = stats[stat]
            for stat in quality.WATCHED:
                before = reference.get(series, {}).get(stat)
                if before and reference[series]["exposures"] >= self.settings.monitor_min_exposures:
                    tests[(f"{stat}@{k}", series)] = [gte(round((1 - tol) * before, 6))]
        champion = out["offline_vs_online"]
        for key in (f"offline_ndcg@{k}", f"online_ndcg@{k}", f"online_hit_rate@{k}"):
            value = champion.get(key)
            if value is not None and not math.isnan(value):
                values[(key, "champion")] = value
        workspace.remember_series(self.settings.paths.monitoring, "quality", out["current"]["series"])
        snapshot = values_report(values, tests).run(values_dataset(values), None, timestamp=w.current_start)
        return workspace.add_run(self.ws, "quality", snapshot)

    def lake(self, window: timedelta, now: datetime) -> dict[str, Any]:
        """Quarantine rates over the last ``window`` of *arrivals* (the ingestion clock)."""
        from monitoring.metrics import values_dataset, values_report

        start = now - window
        rates = lake_quality(self.settings.paths.ingest_log, start, now)
        rates["window"] = f"{start.isoformat()} .. {now.isoformat()}"
        values = logged_values(rates)
        if not values:
            return {**rates, "skipped": "no batch was ingested in the window"}
        workspace.remember_series(self.settings.paths.monitoring, "lake", [s for _, s in values])
        snapshot = values_report(values).run(values_dataset(values), None, timestamp=start)
        return {**rates, "snapshot": workspace.add_run(self.ws, "lake", snapshot)}

    def dashboards(self) -> None:
        save_dashboards(self.settings, self.ws)

    def run(self, w: Windows, step: Step, *, lake_now: datetime | None = None) -> dict[str, Any]:
        """Every concern for windows ``w``; the lake's rates only when ``lake_now`` is given."""
        started = time.perf_counter()
        summary: dict[str, Any] = {"windows": w.as_dict(), "drift": {}}
        step("events")
        summary["drift"]["events"] = self.events(w)
        step("features")
        summary["drift"].update(self.features(w))
        step("exposures")
        cur_exp = read_exposures(self.settings.paths.exposures, w.current_start, w.as_of)
        ref_exp = read_exposures(self.settings.paths.exposures, w.reference_start, w.current_start)
        summary["drift"]["scores"] = self.scores(w, cur_exp, ref_exp)
        summary["guardrails"] = guardrails.check(self.settings, cur_exp)
        step("quality")
        summary["quality"] = self.quality(w, cur_exp, ref_exp)
        step("lake")
        if lake_now is not None:
            summary["lake"] = self.lake(w.window, lake_now)
        step("dashboards")
        self.dashboards()
        summary["seconds"] = round(time.perf_counter() - started, 3)
        return summary


def save_dashboards(settings: Settings, ws: Any = None) -> Any:
    """Every concern's project and dashboard (with every series logged so far); returns the workspace."""
    import json

    ws = ws if ws is not None else workspace.workspace(settings.paths.evidently_workspace)
    path = settings.paths.monitoring / "series.json"
    series = json.loads(path.read_text()) if path.exists() else {}
    workspace.save_dashboards(ws, settings.monitor_k, series)
    return ws


def offline_vs_online(settings: Settings, series: dict[str, dict[str, float]], k: int) -> dict[str, Any]:
    """The champion's offline NDCG (the gate's figure, from MLflow) beside its online quality."""
    from models import registry
    from models.gate import GATE_METRIC

    out: dict[str, Any] = {"champion": None}
    if settings.mlflow_tracking_uri is None and not (settings.paths.mlflow / "mlflow.db").exists():
        return {**out, "note": "no MLflow store yet: nothing is registered"}
    version = registry.alias_version(settings, registry.CHAMPION)
    if version is None:
        return {**out, "note": "no champion registered"}
    tags = registry.client(settings).get_model_version(registry.REGISTERED_MODEL, version).tags
    metric = GATE_METRIC.replace("@", "_at_")
    offline = tags.get(f"{metric}.challenger")
    online = series.get(f"model={version}")
    return {
        "champion": version,
        f"offline_ndcg@{k}": float(offline) if offline is not None else None,
        f"online_ndcg@{k}": online["ndcg"] if online else None,
        f"online_hit_rate@{k}": online["hit_rate"] if online else None,
        "online_exposures": int(online["exposures"]) if online else 0,
    }
