"""The Evidently workspace under ``$AISLE_HOME/monitoring/workspace``: one project per concern, each with
a dashboard that shows the trend over time (every daily report adds one snapshot per concern).

Dashboards are written whole with ``save_dashboard`` (``add_panel(tab=...)`` lists a panel twice in
Evidently 0.7.23), and every series of a panel is separated by a metric *label* (``column``, ``series``):
series that differ only by tags or metadata are merged into the first one by 0.7.23's local storage.
Each panel that needs a table's snapshots alone selects them by tag, one table per panel.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from monitoring.evidently_env import evidently
from monitoring.frames import EVENT_COLUMNS, FEATURE_TABLES, SCORE_COLUMNS, Columns
from monitoring.quality import STATS

VALUE: Final = "evidently:metric_v2:AisleValue"


@dataclass(frozen=True)
class Concern:
    key: str
    name: str
    description: str


CONCERNS: Final = {
    c.key: c
    for c in (
        Concern(
            "events",
            "Aisle · event stream drift",
            "Event mix, devices, countries, prices, session depth: current window vs reference.",
        ),
        Concern(
            "features",
            "Aisle · feature drift",
            "The user and item feature tables' daily snapshots: current vs reference.",
        ),
        Concern(
            "scores",
            "Aisle · served score drift",
            "Scores the service returned, by position: current vs reference.",
        ),
        Concern(
            "quality",
            "Aisle · recommendation quality",
            "Exposures joined with outcomes, per model version and variant; offline vs online.",
        ),
        Concern(
            "lake",
            "Aisle · lake data quality",
            "Share of arriving rows the validation gate quarantined, per source and reason.",
        ),
    )
}


def workspace(root: Path) -> Any:
    evidently()
    from evidently.ui.workspace import Workspace

    root.mkdir(parents=True, exist_ok=True)
    return Workspace(str(root))


def project_id(ws: Any, concern: Concern) -> str:
    """The concern's project, created on first use (found by name afterwards)."""
    found = ws.search_project(concern.name)
    if found:
        return str(found[0].id)
    return str(ws.create_project(concern.name, description=concern.description).id)


def add_run(ws: Any, concern: str, snapshot: Any) -> str:
    return str(ws.add_run(project_id(ws, CONCERNS[concern]), snapshot).id)


# ---------------------------------------------------------------- dashboards


def _panels() -> Any:
    evidently()
    from evidently.sdk import panels
    from evidently.sdk.models import PanelMetric

    return panels, PanelMetric


def _drift_panels(title: str, columns: Columns, tags: list[str] | None = None) -> list[Any]:
    panels, PanelMetric = _panels()
    return [
        panels.line_plot_panel(
            title=f"{title}: share of drifted columns",
            size="half",
            values=[
                PanelMetric(
                    legend="drift share",
                    tags=tags or [],
                    metric="DriftedColumnsCount",
                    metric_labels={"value_type": "share"},
                )
            ],
        ),
        panels.counter_panel(
            title=f"{title}: drifted columns, last report",
            size="half",
            aggregation="last",
            values=[
                PanelMetric(
                    tags=tags or [], metric="DriftedColumnsCount", metric_labels={"value_type": "count"}
                )
            ],
        ),
        panels.line_plot_panel(
            title=f"{title}: drift score per column (distance; drift at or above the threshold)",
            values=[
                PanelMetric(legend=c, tags=tags or [], metric="ValueDrift", metric_labels={"column": c})
                for c in columns.all
            ],
        ),
    ]


def _value_panel(title: str, name: str, series: Iterable[str], size: str = "full") -> Any:
    panels, PanelMetric = _panels()
    return panels.line_plot_panel(
        title=title,
        size=size,
        values=[
            PanelMetric(legend=s, metric=VALUE, metric_labels={"name": name, "series": s}) for s in series
        ],
    )


def dashboards(k: int, series: Mapping[str, list[str]]) -> dict[str, dict[str, list[Any]]]:
    """concern → {tab title: panels}; ``series`` holds every quality / lake series seen so far."""
    panels, _ = _panels()
    quality_series = series.get("quality", ["all"])
    lake_series = series.get("lake", ["all"])
    feature_tabs = {
        table: _drift_panels(table.replace("_", " "), columns, tags=[table])
        for table, columns in FEATURE_TABLES.items()
    }
    quality_tab = [
        _value_panel(
            f"{stat.replace('_', ' ')}@{k} per model version and variant",
            f"{stat}@{k}",
            quality_series,
            "half",
        )
        for stat in STATS
    ]
    offline = [
        _value_panel(
            f"champion: offline NDCG@{k} (MLflow) beside online NDCG@{k} and hit rate@{k}",
            name,
            ["champion"],
            "half",
        )
        for name in (f"offline_ndcg@{k}", f"online_ndcg@{k}", f"online_hit_rate@{k}")
    ]
    reasons = [s for s in lake_series if s.startswith("reason=")]
    channels = [s for s in lake_series if not s.startswith("reason=")]
    return {
        "events": {
            "Drift": [
                panels.text_panel(title=CONCERNS["events"].description),
                *_drift_panels("events", EVENT_COLUMNS),
            ]
        },
        "features": feature_tabs,
        "scores": {"Drift": _drift_panels("served scores", SCORE_COLUMNS)},
        "quality": {
            "Quality": quality_tab,
            "Offline vs online": offline,
            "Exposures": [_value_panel("exposures per day", "exposures", quality_series)],
        },
        "lake": {
            "Quarantine": [
                _value_panel("quarantine rate per source", "quarantine_rate", channels),
                _value_panel("quarantine rate per reason (share of rows read)", "quarantine_rate", reasons),
                _value_panel("rows read per source", "rows_read", channels),
            ]
        },
    }


def save_dashboards(ws: Any, k: int, series: Mapping[str, list[str]]) -> None:
    evidently()
    from evidently.sdk.models import DashboardModel, DashboardTabModel

    for concern, tabs in dashboards(k, series).items():
        all_panels = [p for ps in tabs.values() for p in ps]
        model = DashboardModel(
            tabs=[DashboardTabModel(title=t, panels=[p.id for p in ps]) for t, ps in tabs.items()],
            panels=all_panels,
        )
        ws.save_dashboard(project_id(ws, CONCERNS[concern]), model)


def remember_series(root: Path, concern: str, new: Iterable[str]) -> list[str]:
    """Every series a concern has logged so far (kept beside the workspace), so panels keep old ones."""
    path = root / "series.json"
    known: dict[str, list[str]] = json.loads(path.read_text()) if path.exists() else {}
    merged = sorted(set(known.get(concern, [])) | set(new), key=lambda s: (s != "all", s))
    known[concern] = merged
    path.write_text(json.dumps(known, indent=1, sort_keys=True))
    return merged
