"""The analyst pages' data: each chart computed from the real thing, never from a fixture.

* **recommendation graph**: shoppers and the items the served policy recommends to them now (the
  service's own predict path, with their online contexts), on a sample of recently active shoppers;
* **degree distributions**: per item, the shoppers who interacted with it (the lake) and the lists it
  appears in (that sample's recommendations), as log-log histograms, with Gini coefficients: the
  popularity bias is the recommendations' heavier head;
* **top products** by views, carts and purchases (the lake);
* **model comparison** of the newest MLflow training or evaluation run, with its bootstrap intervals;
* **catalog coverage** of what this worker served since it started and of the sampled lists;
* **links** to the UIs that are running (``links.py``).

Each section is computed on its own: one that cannot be (no training run yet, Redis away) says why in
``error`` and the others still show. Results are cached for a minute per worker.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from aisle.core.settings import Settings
from serving.ui.lake_stats import LakeStats

log = logging.getLogger("bentoml.aisle.insights")

SAMPLE_SHOPPERS: Final = 300
SAMPLE_K: Final = 10
GRAPH_SHOPPERS: Final = 25
GRAPH_K: Final = 5
TOP: Final = 10
MAX_AGE_S: Final = 60.0
COMPARISON_ARTIFACT: Final = "evaluation/comparison.csv"


def gini(counts: np.ndarray) -> float:
    """0 when every item is equally frequent, towards 1 when a few items take everything."""
    values = np.sort(np.asarray(counts, dtype=np.float64))
    if len(values) == 0 or values.sum() == 0:
        return 0.0
    n = len(values)
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * values).sum()) / (n * values.sum()) - (n + 1) / n)


def histogram(degrees: np.ndarray) -> list[list[float]]:
    """Log-binned degree distribution: ``[[bin centre, items per unit of degree], ...]`` over bins
    [1, 2), [2, 4), [4, 8)..., the usual way to read a heavy tail on log-log axes (a plain histogram's
    sparse tail is a cloud of ones). Degree 0 cannot be drawn on a log axis and is counted apart."""
    positive = degrees[degrees > 0].astype(np.int64)
    if not len(positive):
        return []
    edges = 2 ** np.arange(0, int(np.log2(positive.max())) + 2)
    counts, _ = np.histogram(positive, bins=edges)
    out = []
    for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True):
        if n:
            out.append([round(float(np.sqrt(lo * (hi - 1))), 3), round(float(n / (hi - lo)), 4)])
    return out


#: Reading a few hundred shoppers' contexts at once takes longer than one /recommend may wait; this read
#: is not on a shopper's request path, so it may wait longer, and it bypasses the request path's breaker
#: (a slow bulk read must not make the next shopper's answer degraded).
SAMPLE_READ_TIMEOUT_S: Final = 5.0


def sample_lists(runtime: Any, shoppers: list[str], k: int) -> tuple[dict[str, list[str]], bool]:
    """Each shopper's list as /recommend would answer it now (one batched pass, no exposures logged);
    also whether the online contexts were unavailable (then the lists are cold-start ones)."""
    from models.context import from_online
    from serving.pipeline import Ask, recommend

    if not shoppers:
        return {}, False
    served = runtime.served()
    online = from_online(runtime.settings, shoppers, timeout_s=SAMPLE_READ_TIMEOUT_S)
    queries = online.contexts.queries(shoppers)
    answers = recommend(served, runtime.rules, queries, [Ask(u, k) for u in shoppers])
    return {u: a.item_ids for u, a in zip(shoppers, answers, strict=True)}, bool(online.degraded)


def graph(lists: dict[str, list[str]], titles: dict[str, str], categories: dict[str, str]) -> dict[str, Any]:
    shoppers = list(lists)[:GRAPH_SHOPPERS]
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    seen_items: dict[str, int] = {}
    for shopper in shoppers:
        nodes.append({"id": f"u:{shopper}", "kind": "shopper", "label": shopper})
        for rank, item in enumerate(lists[shopper][:GRAPH_K], start=1):
            if item not in seen_items:
                seen_items[item] = 0
                nodes.append(
                    {
                        "id": f"i:{item}",
                        "kind": "item",
                        "label": titles.get(item, item),
                        "category": categories.get(item, "").split(">")[0],
                    }
                )
            seen_items[item] += 1
            edges.append({"source": f"u:{shopper}", "target": f"i:{item}", "rank": rank})
    shared = sum(1 for n in seen_items.values() if n > 1)
    return {
        "nodes": nodes,
        "edges": edges,
        "shoppers": len(shoppers),
        "items": len(seen_items),
        "shared_items": shared,
    }


def degrees(stats: LakeStats, lists: dict[str, list[str]], catalog_ids: list[str]) -> dict[str, Any]:
    interactions = stats.items["shoppers"].reindex(catalog_ids).fillna(0).to_numpy(dtype=np.int64)
    appearances = Counter(item for items in lists.values() for item in items)
    recommended = np.asarray([appearances.get(i, 0) for i in catalog_ids], dtype=np.int64)
    return {
        "interactions": histogram(interactions),
        "recommendations": histogram(recommended),
        "gini_interactions": round(gini(interactions), 3),
        "gini_recommendations": round(gini(recommended), 3),
        "items": len(catalog_ids),
        "never_interacted": int((interactions == 0).sum()),
        "never_recommended": int((recommended == 0).sum()),
        "sample_shoppers": len(lists),
    }


def top_products(stats: LakeStats, titles: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    frame = stats.items.reset_index()
    for column in ("views", "carts", "purchases"):
        best = frame.sort_values([column, "item_id"], ascending=[False, True]).head(TOP)
        out[column] = [
            {
                "item_id": r.item_id,
                "title": titles.get(r.item_id, r.item_id),
                "count": int(getattr(r, column)),
            }
            for r in best.itertuples(index=False)
            if int(getattr(r, column)) > 0
        ]
    return out


def coverage(runtime: Any, lists: dict[str, list[str]], catalog_size: int) -> dict[str, Any]:
    shown = runtime.exposures.shown
    sampled = {item for items in lists.values() for item in items}
    size = max(1, catalog_size)
    return {
        "catalog_items": catalog_size,
        "served_items": len(shown),
        "served_answers": runtime.exposures.answers,
        "served_share": round(len(shown) / size, 4),
        "sample_items": len(sampled),
        "sample_share": round(len(sampled) / size, 4),
        "sample_shoppers": len(lists),
    }


def model_comparison(settings: Settings) -> dict[str, Any] | None:
    """The comparison table of the newest run that logged one (training or evaluation), segment "all"
    and the two history segments, with the bootstrap intervals; None when no run has one yet."""
    from models import registry

    client = registry.client(settings)
    experiment = client.get_experiment_by_name(registry.EXPERIMENT)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=25
    )
    for run in runs:
        names = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
        if COMPARISON_ARTIFACT not in names:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run.info.run_id, COMPARISON_ARTIFACT, tmp)
            table = pd.read_csv(path)
        columns = [c for c in table.columns if c.split("_")[0] in ("ndcg@10", "recall@10")]
        rows = table[["model", "segment", "users", *columns]].replace({np.nan: None})
        return {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "kind": run.data.tags.get("aisle.kind"),
            "started": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC").isoformat(),
            "experiment_id": experiment.experiment_id,
            "rows": rows.to_dict("records"),
        }
    return None


class Insights:
    """Every section, cached for ``MAX_AGE_S`` (one computation at a time)."""

    def __init__(self) -> None:
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def get(self, runtime: Any, stats: LakeStats) -> dict[str, Any]:
        cached = self._cached
        if cached is not None and time.time() - cached[0] < MAX_AGE_S:
            return cached[1]
        with self._lock:
            cached = self._cached
            if cached is not None and time.time() - cached[0] < MAX_AGE_S:
                return cached[1]
            result = self._compute(runtime, stats)
            self._cached = (time.time(), result)
            return result

    def _compute(self, runtime: Any, stats: LakeStats) -> dict[str, Any]:
        started = time.perf_counter()
        catalog = runtime.catalog.snapshot
        titles = catalog.frame["title"].dropna().astype(str).to_dict()
        categories = catalog.frame["category"].dropna().astype(str).to_dict()
        catalog_ids = catalog.frame.index.tolist() or stats.items.index.tolist()
        out: dict[str, Any] = {"lake": {"events": stats.events, "shoppers": stats.users}}
        lists: dict[str, list[str]] = {}
        try:
            lists, degraded = sample_lists(runtime, stats.shoppers[:SAMPLE_SHOPPERS], SAMPLE_K)
            out["sample"] = {
                "shoppers": len(lists),
                "k": SAMPLE_K,
                "degraded": degraded,
                "model_version": runtime.served().version,
            }
        except Exception as exc:
            out["sample"] = {"error": f"the sample's recommendations failed: {exc}"}
        sections = {
            "graph": lambda: graph(lists, titles, categories),
            "degrees": lambda: degrees(stats, lists, catalog_ids),
            "top": lambda: top_products(stats, titles),
            "models": lambda: (
                model_comparison(runtime.settings)
                or {"error": "no training or evaluation run has logged a comparison yet (`aisle train`)"}
            ),
            "coverage": lambda: coverage(runtime, lists, len(catalog_ids)),
        }
        for name, build in sections.items():
            try:
                out[name] = build()
            except Exception as exc:
                log.warning("insights section %s failed: %s", name, exc)
                out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        out["seconds"] = round(time.perf_counter() - started, 3)
        out["computed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return out


def data_docs_index(settings: Settings) -> Path | None:
    index = settings.paths.data_docs / "index.html"
    return index if index.is_file() else None
