"""The recommendation service under closed-loop load: /recommend (full pipeline) beside /constant.

For each worker count and each concurrency (1, 8, 32), ``c`` clients each send one request, wait for the
answer, and send the next, for ``--seconds`` per endpoint; every request's latency is recorded (no
sampling). /constant is the same service answering a fixed list: the framework's ceiling on this
machine, measured in the same run. Also reported: start-up time to /readyz, RSS per worker, and the mean
time per pipeline stage (from the service's own Prometheus histograms).

    .venv/bin/python bench/bench_serving.py                 # builds a shop + champion under a temp home
    .venv/bin/python bench/bench_serving.py --home var      # uses the champion already in var/
    .venv/bin/python bench/bench_serving.py --seconds 5 --workers 1   # a quick look

Targets (issue #12, this 2-core machine, load generator included): c=1 p99 ≤ 10 ms; c=8 p99 < 25 ms and
max < 100 ms; /recommend throughput ≥ 0.5 × /constant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from _common import report

from aisle.app.server import ServiceProcess, running_service
from aisle.app.services import embedded_services, free_port
from aisle.core.settings import Settings, load_settings

CONCURRENCY = (1, 8, 32)


def load_1m() -> float:
    """The machine's 1-minute load average, reported beside every figure (the machine is shared)."""
    return round(os.getloadavg()[0], 2)


def build_home(settings: Settings, users: int, items: int, days: int) -> None:
    """The real pipeline, small: generate → ingest → Spark features + materialize → train + register."""
    from aisle.app.jobs import features, ingest, models, shop

    shop.generate(settings, {"users": users, "items": items, "days": days, "seed": 42})
    ingest.batch(settings, {"sources": [str(settings.paths.raw / "shop")]})
    features.build(settings)
    models.train(settings, {"epochs": 3})  # every model, as `aisle train` and the demo: SASRec included


def pick_users(settings: Settings, n: int = 500) -> list[str]:
    from models.data import load_events

    events = load_events(settings)
    users = events["user_id"].drop_duplicates().tolist()
    random.Random(0).shuffle(users)
    return users[: n - n // 10] + [f"bench-new-{i}" for i in range(n // 10)]  # 10% unknown shoppers


def _request(path: str, body: dict[str, Any] | None) -> bytes:
    data = json.dumps(body or {}).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + data


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    match = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
    if match:
        await reader.readexactly(int(match.group(1)))
    return status


async def _client(
    port: int, requests: list[bytes], until: float, out: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.perf_counter() < until:
            payload = requests[n % len(requests)]
            n += 1
            started = time.perf_counter()
            try:
                writer.write(payload)
                await writer.drain()
                status = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError):
                errors.append(0)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            out.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _run(
    port: int, requests: list[bytes], concurrency: int, seconds: float
) -> tuple[list[float], list[int]]:
    latencies: list[float] = []
    errors: list[int] = []
    until = time.perf_counter() + seconds
    offset = [requests[i::concurrency] or requests for i in range(concurrency)]
    await asyncio.gather(*(_client(port, offset[i], until, latencies, errors) for i in range(concurrency)))
    return latencies, errors


def load(port: int, requests: list[bytes], concurrency: int, seconds: float) -> dict[str, Any]:
    latencies, errors = asyncio.run(_run(port, requests, concurrency, seconds))
    ms = np.asarray(latencies) * 1000
    return {
        "requests": len(ms),
        "rps": round(len(ms) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        "max_ms": round(float(ms.max()), 2) if len(ms) else None,
        "errors": len(errors),
    }


def rss_mb(service: ServiceProcess) -> dict[str, float]:
    import psutil

    out = {"parent": round(psutil.Process(service.pid).memory_info().rss / 2**20, 1)}
    for i, pid in enumerate(service.remember_workers()):
        with contextlib.suppress(psutil.Error):
            out[f"worker{i}"] = round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    return out


def bench_service(settings: Settings, workers: int, threads: int, seconds: float, users: list[str]) -> None:

    port = free_port()
    recommend = [_request("/recommend", {"user_id": u, "k": 10}) for u in users]
    constant = [_request("/constant", None)]
    with running_service(settings, port, workers=workers, threads=threads) as service:
        report(
            "serving.startup",
            workers=workers,
            ready_seconds=round(service.ready_seconds or 0, 2),
            load=load_1m(),
        )
        load(port, recommend, 4, min(5.0, seconds))  # warm-up: first TF calls, allocator, caches
        for concurrency in CONCURRENCY:
            base = load(port, constant, concurrency, seconds)
            full = load(port, recommend, concurrency, seconds)
            ratio = round(full["rps"] / base["rps"], 3) if base["rps"] else None
            report(
                "serving.constant",
                workers=workers,
                threads=threads,
                concurrency=concurrency,
                **base,
                load=load_1m(),
            )
            report(
                "serving.recommend",
                workers=workers,
                threads=threads,
                concurrency=concurrency,
                **full,
                rps_vs_constant=ratio,
                load=load_1m(),
            )
        report("serving.memory", workers=workers, rss_mb=rss_mb(service), load=load_1m())


def stages_in_process(settings: Settings, users: list[str], rounds: int = 300) -> None:
    """Per-stage time of /recommend's path without HTTP: the online context read, retrieval, ranking and
    rules, one shopper at a time, as the service runs them."""
    from serving.pipeline import Ask, recommend
    from serving.runtime import Runtime

    runtime = Runtime(settings)
    runtime.start(background=False)
    served = runtime.served()
    per_stage: dict[str, list[float]] = {
        "features": [],
        "retrieval": [],
        "ranking": [],
        "rules": [],
        "total": [],
    }
    sources: dict[str, int] = {}  # hybrid (personal) vs cold_start: a bench without online state is cold
    for n in range(rounds + 30):
        user = users[n % len(users)]
        timings: dict[str, float] = {}
        started = time.perf_counter()
        online = runtime.reader.read([user])
        timings["features"] = time.perf_counter() - started
        answer = recommend(
            served, runtime.rules, online.contexts.queries([user]), [Ask(user, 10)], timings=timings
        )
        sources[answer[0].source] = sources.get(answer[0].source, 0) + 1
        timings["total"] = time.perf_counter() - started
        if n >= 30:  # the first calls warm TensorFlow and the allocator
            for stage, values in per_stage.items():
                values.append(timings.get(stage, 0.0) * 1000)
    report(
        "serving.stages",
        requests=rounds,
        sources=sources,
        **{
            f"{stage}_ms": {
                "mean": round(float(np.mean(v)), 3),
                "p50": round(float(np.median(v)), 3),
                "p99": round(float(np.percentile(v, 99)), 3),
            }
            for stage, v in per_stage.items()
        },
        load=load_1m(),
    )
    runtime.stop()


def batching_upper_bound(settings: Settings, users: list[str], group: int = 8, rounds: int = 30) -> None:
    """What adaptive batching of the ranking stage could save at best: the ranker scoring ``group``
    requests' candidates one call each vs all in one call (same process, no dispatcher, no serde)."""
    from serving.runtime import Runtime

    runtime = Runtime(settings)
    runtime.start(background=False)
    policy = runtime.served().policy
    requests = []
    for user in users[: group * rounds]:
        queries = runtime.reader.read([user]).contexts.queries([user])
        frame = policy._complete(queries.frame)  # type: ignore[attr-defined]
        pairs, _, _ = policy._candidates(frame, queries.excluded)  # type: ignore[attr-defined]
        if len(pairs):
            requests.append(policy._feature_columns(frame, pairs))  # type: ignore[attr-defined]
    ranker = policy.ranker  # type: ignore[attr-defined]
    for columns in requests[:group]:
        ranker.score(columns)  # warm-up
    one_by_one = batched = 0.0
    rows = 0
    for start in range(0, len(requests) - group + 1, group):
        chunk = requests[start : start + group]
        merged = {c: np.concatenate([r[c] for r in chunk]) for c in chunk[0]}
        rows += sum(len(r["item_id"]) for r in chunk)
        t0 = time.perf_counter()
        for columns in chunk:
            ranker.score(columns)
        t1 = time.perf_counter()
        ranker.score(merged)
        batched += time.perf_counter() - t1
        one_by_one += t1 - t0
    n = (len(requests) // group) * group
    report(
        "serving.ranking_batching",
        group=group,
        requests=n,
        candidates_per_request=round(rows / max(n, 1), 1),
        ms_per_request_one_call_each=round(one_by_one / max(n, 1) * 1000, 3),
        ms_per_request_batched=round(batched / max(n, 1) * 1000, 3),
        load=load_1m(),
    )
    runtime.stop()


def paths_compared(settings: Settings, users: list[str], rounds: int = 300) -> None:
    """What the request path changed, same process, same shoppers: the online read through Feast's SDK
    vs straight from Redis; the user tower and the ranker through their SavedModel signatures vs the
    numpy copies serving uses (per request: one shopper, its real candidates)."""
    from feature_repo.online import feast_online_users, online_users
    from models import registry
    from models.context import from_online
    from models.hybrid import HybridPolicy
    from serving.policies import numpy_models

    path, _ = registry.download_policy(settings, alias=registry.CHAMPION)
    signatures = HybridPolicy.load(path)
    copies = numpy_models(signatures)
    asked = [[users[n % len(users)]] for n in range(rounds)]

    def per_call_ms(call: Any, inputs: list[Any]) -> float:
        for x in inputs[:20]:
            call(x)
        started = time.perf_counter()
        for x in inputs:
            call(x)
        return round((time.perf_counter() - started) / len(inputs) * 1000, 3)

    requests = []
    for user in asked[:100]:
        queries = from_online(settings, user).contexts.queries(user)
        frame = signatures._complete(queries.frame)
        pairs = signatures._candidates(frame, queries.excluded)[0]
        requests.append((frame, signatures._feature_columns(frame, pairs)))
    report(
        "serving.paths",
        requests=len(asked),
        online_read_feast_ms=per_call_ms(lambda u: feast_online_users(settings, u), asked),
        online_read_direct_ms=per_call_ms(lambda u: online_users(settings, u, timeout_s=1.0), asked),
        user_tower_signature_ms=per_call_ms(lambda r: signatures.retriever.embed_users(r[0]), requests),
        user_tower_numpy_ms=per_call_ms(lambda r: copies.retriever.embed_users(r[0]), requests),
        ranker_signature_ms=per_call_ms(lambda r: signatures.ranker.score(r[1]), requests),  # type: ignore[union-attr]
        ranker_numpy_ms=per_call_ms(lambda r: copies.ranker.score(r[1]), requests),  # type: ignore[union-attr]
        candidates_per_request=round(float(np.mean([len(r[1]["item_id"]) for r in requests])), 1),
        load=load_1m(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="AISLE_HOME with a registered champion (default: build one)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, e.g. 1,2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--items", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="aisle-bench-serving-"))
    settings = load_settings(home=home)
    with embedded_services(settings):
        from models import registry

        if registry.alias_version(settings, registry.CHAMPION) is None:
            started = time.perf_counter()
            build_home(settings, args.users, args.items, 30)
            report("serving.setup", home=str(home), seconds=round(time.perf_counter() - started, 1))
        else:  # an embedded Redis started afresh holds nothing: without this every shopper is cold start
            from feature_repo.materialization import materialize

            summary = materialize(settings)
            report("serving.materialize", rows=summary.get("rows"), seconds=summary.get("seconds"))
        users = pick_users(settings)
        for workers in [int(w) for w in args.workers.split(",")]:
            bench_service(settings, workers, args.threads, args.seconds, users)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):  # as the service's workers run (OPENBLAS_NUM_THREADS=1)
            stages_in_process(settings, users)
            paths_compared(settings, users)
            batching_upper_bound(settings, users)


if __name__ == "__main__":
    main()
