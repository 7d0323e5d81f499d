"""Airflow's cost on this machine: start-up time per component, resident memory per component, and the
overhead of a one-task DAG run (trigger → success through the REST API) against the task's own time.

The one-task DAG is `generate_shop` on a tiny shop. Its own time is the job's ``seconds`` (what it
takes in-process, read from the run's XCom); the same job run in this process is the baseline.
Memory: RSS and PSS (shared pages split fairly: forked workers share most of theirs) summed over
each component's session. Runs on a private AISLE_HOME and a free port, stops everything after.

    python bench/bench_airflow.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import report

SHOP = {"users": 60, "items": 20, "days": 2, "seed": 1}


def _memory(pid: int) -> dict[str, float]:
    from aisle.app.airflow_server import _session_pids

    rss = pss = 0
    pids = _session_pids(pid)
    for member in pids:
        try:
            rollup = Path(f"/proc/{member}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        for line in rollup:
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss"):
                kib = int(rest.split()[0])
                rss, pss = (rss + kib, pss) if name == "Rss" else (rss, pss + kib)
    return {"processes": len(pids), "rss_mib": round(rss / 1024, 1), "pss_mib": round(pss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from aisle.app.airflow_client import client_for
    from aisle.app.airflow_server import airflow_down, airflow_up, read_state
    from aisle.app.jobs import orchestration
    from aisle.app.jobs import shop as shop_jobs
    from aisle.app.services import free_port
    from aisle.core.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="aisle-bench-airflow-") as tmp:
        settings = load_settings(home=Path(tmp) / "aisle", airflow_port=free_port(), airflow_db_url=None)
        load = Path("/proc/loadavg").read_text().split()[:3]
        info = airflow_up(settings)
        try:
            report(
                "airflow_startup",
                seconds_until_ready=info["ready_seconds"],
                total_seconds_incl_migrate_and_dag_parse=info["seconds"],
                migrated=info["migrated"],
                load_avg=load,
            )
            time.sleep(10)  # let the first parse and the executor's workers settle
            components = read_state(settings)["components"]
            for name, entry in components.items():
                report("airflow_memory_idle", component=name, **_memory(int(entry["pid"])))
            client = client_for(settings)

            walls, own, task_durations = [], [], []
            for i in range(args.runs + 1):  # the first run pays the cold worker's imports: reported apart
                started = time.perf_counter()
                run = orchestration.trigger(settings, {"dag_id": "generate_shop", "conf": SHOP, "wait": True})
                wall = time.perf_counter() - started
                assert run["state"] == "success", run
                summary = client.xcom("generate_shop", run["run_id"], "generate")
                ti = client.task_instances("generate_shop", run["run_id"])[0]
                if i == 0:
                    report("airflow_first_run_after_start", trigger_to_success_s=round(wall, 2))
                    continue
                walls.append(wall)
                own.append(float(summary["seconds"]))
                task_durations.append(float(ti.get("duration") or 0.0))
            baseline = []
            for _ in range(3):
                t = time.perf_counter()
                shop_jobs.generate(settings, SHOP)
                baseline.append(time.perf_counter() - t)
            report(
                "airflow_one_task_overhead",
                runs=args.runs,
                trigger_to_success_median_s=round(statistics.median(walls), 2),
                task_own_time_median_s=round(statistics.median(own), 3),
                task_instance_duration_median_s=round(statistics.median(task_durations), 2),
                overhead_median_s=round(statistics.median(w - o for w, o in zip(walls, own, strict=True)), 2),
                same_job_in_process_median_s=round(statistics.median(baseline), 3),
                ratio_trigger_to_in_process=round(statistics.median(walls) / statistics.median(baseline), 1),
                load_avg=Path("/proc/loadavg").read_text().split()[:3],
            )
        finally:
            stopped = airflow_down(settings)
            report("airflow_down", stopped={k: v["note"] for k, v in stopped.items()})


if __name__ == "__main__":
    main()
