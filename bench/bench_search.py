"""Search by meaning against keyword search, in one run on one generated catalog.

Queries with known answers come from the catalog tree (``ingestion/synthetic/queries.py``): per leaf,
two keyword queries ("wireless earbuds") and two intent queries written as paraphrases ("tiny audio
buds for the gym"); an answer is right when the item sits in the query's leaf. Printed per method and
query kind: precision@10 (over min(10, leaf size)) with a bootstrap 95% interval, and query latency.
Also the cost of building each index. The baseline is BM25 (bm25s, stop words, Snowball stemming) over
the very same item texts.

    python bench/bench_search.py [--items 3000] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from ingestion.synthetic.queries import KINDS, search_queries
from ingestion.synthetic.shop import ShopConfig, generate_shop
from models.search.embedder import Embedder
from models.search.index import build_index, item_texts
from models.search.keyword import KeywordIndex
from models.search.quality import precision_at_k

K = 10


def interval(values: np.ndarray, rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = rng.choice(values, (rounds, len(values)), replace=True).mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def latency_ms(run: object, queries: list[str]) -> dict[str, float]:
    times = []
    for text in queries:
        t0 = time.perf_counter()
        run(text)  # type: ignore[operator]
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(float(np.median(times)), 2), "p95_ms": round(float(np.quantile(times, 0.95)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    catalog = generate_shop(ShopConfig(users=50, items=args.items, days=7, seed=11)).catalog.to_pandas()
    categories = catalog["category"].astype(str).to_numpy()
    queries = search_queries(categories)
    texts = [q.text for q in queries]
    wanted = [q.category for q in queries]
    kinds = np.asarray([q.kind for q in queries])

    t0 = time.perf_counter()
    embedder = Embedder(args.threads)
    load_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    semantic = build_index(catalog, embedder)
    semantic_build_s = time.perf_counter() - t0
    semantic_build_cpu_s = time.process_time() - c0
    t0 = time.perf_counter()
    keyword = KeywordIndex(item_texts(catalog))
    keyword_build_s = time.perf_counter() - t0
    report(
        "search_index_build",
        items=len(catalog),
        embed_threads=args.threads,
        model_load_s=round(load_s, 2),
        semantic_build_s=round(semantic_build_s, 2),
        semantic_items_per_s=round(len(catalog) / semantic_build_s, 1),
        semantic_build_cpu_s=round(semantic_build_cpu_s, 2),
        semantic_items_per_cpu_s=round(len(catalog) / semantic_build_cpu_s, 1),
        keyword_build_s=round(keyword_build_s, 3),
        ratio_semantic_vs_keyword_build=round(semantic_build_s / max(keyword_build_s, 1e-9), 1),
    )

    _, semantic_rows = semantic.search(embedder.encode(texts), K)
    _, keyword_rows = keyword.search(texts, K)
    for method, rows in (("semantic", semantic_rows), ("bm25", keyword_rows)):
        p = precision_at_k(rows, categories, wanted, K)
        for kind in (*KINDS, "all"):
            chosen = p if kind == "all" else p[kinds == kind]
            lo, hi = interval(chosen)
            report(
                "search_precision",
                method=method,
                queries=kind,
                n=len(chosen),
                precision_at_10=round(float(chosen.mean()), 3),
                ci95=[round(lo, 3), round(hi, 3)],
                no_result_share=round(
                    float(np.mean(rows[kinds == kind if kind != "all" else slice(None), 0] < 0)), 3
                ),
                items=len(catalog),
            )

    single = Embedder(1)  # the service answers on one thread per worker
    sample = texts[:: max(1, len(texts) // 60)]
    semantic_latency = latency_ms(lambda q: semantic.search(single.encode([q]), K), sample)
    keyword_latency = latency_ms(lambda q: keyword.search([q], K), sample)
    report(
        "search_latency",
        items=len(catalog),
        queries=len(sample),
        semantic=semantic_latency,
        bm25=keyword_latency,
        ratio_semantic_vs_bm25_p50=round(
            semantic_latency["p50_ms"] / max(keyword_latency["p50_ms"], 1e-6), 1
        ),
    )


if __name__ == "__main__":
    main()
