"""Backfill speed: ``evla backfill`` with ``--engine local`` against ``--engine dask`` on the
same records, in one run, with the real default embedder (all-MiniLM-L6-v2 on torch).

Each engine runs in a fresh process on a fresh database, so both pay the same start-up
(imports, model load; for dask, the LocalCluster and one model per worker) and report
their own peak RSS: the driver's, and the largest worker process's (dask workers are
children of the driver). The records are the first N stream records from ``--cut``,
scored by the model of ``heldout.py`` (trained on what was known before the cut, no
shipped vectors), so they are new to the model and to the cache, as in a real backfill.
Prints records/s per engine, how many records passed the gate (were embedded), the
ratio dask/local, and what a 100,000- and a 2.7 M-record backfill would take at each rate.

    python benchmarks/backfill.py [--records 2000] [--workers 2] [--cut 2025-08-04]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from heldout import DEFAULT_CUT, heldout_model

ROOT = Path(__file__).resolve().parent.parent
PROJECTIONS = (100_000, 2_700_000)


def child(engine: str, snapshot: str, db_path: str, workers: int, chunk_size: int) -> None:
    """One backfill in this process; prints one JSON line with its numbers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    from evla_miner.core.db import open_db
    from evla_miner.pipeline.backfill import backfill

    db = open_db(Path(db_path))
    marks: list[tuple[float, int]] = []  # (time, papers scored) at each committed chunk

    def on_commit(chunk: int) -> None:
        marks.append((time.perf_counter(), chunk))

    result = backfill(
        db,
        snapshot,
        engine=engine,
        workers=workers if engine == "dask" else None,
        chunk_size=chunk_size,
        shipped_vectors=False,
        on_commit=on_commit,
    )
    seconds = time.perf_counter() - started
    params = json.loads(db["runs"].get(result.run_id)["params"])
    print(
        json.dumps(
            {
                "engine": params.get("engine_detail", engine),
                "seconds": seconds,
                "backfill_seconds": result.seconds,
                "scored": result.counts["scored"],
                "embedded": result.counts["embedded"],
                # after the first chunk: model loaded, workers warm; what a long backfill runs at
                "steady_rate": (len(marks) - 2) * chunk_size / (marks[-2][0] - marks[0][0])
                if len(marks) > 2
                else None,
                "driver_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            }
        )
    )


def duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=128)
    parser.add_argument("--cut", type=date.fromisoformat, default=DEFAULT_CUT)
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "DB"), help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.snapshot, args.child[1], args.workers, args.chunk_size)
        return

    with tempfile.TemporaryDirectory() as tmp:
        model_env, later = heldout_model(args.cut, Path(tmp), dict(os.environ))
        snapshot = Path(tmp) / "records.jsonl"
        snapshot.write_text("".join(json.dumps(r) + "\n" for r in later[: args.records]))
        results = []
        for engine in ("local", "dask"):
            db = Path(tmp) / f"{engine}.db"
            command = [sys.executable, __file__, "--child", engine, str(db)]
            command += ["--snapshot", str(snapshot), "--workers", str(args.workers)]
            command += ["--chunk-size", str(args.chunk_size)]
            output = subprocess.run(
                command, env=model_env, check=True, capture_output=True, text=True
            ).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))

    print(
        f"{args.records:,} stream records from {args.cut} (new to the model and the cache), "
        "default embedder "
        f"(all-MiniLM-L6-v2, torch), chunk size {args.chunk_size}, {os.cpu_count()} cores; "
        "each engine in a fresh process and db, start-up included"
    )
    print(
        f"{'engine':32} {'records':>7} {'seconds':>8} {'records/s':>9} {'steady/s':>8} "
        f"{'driver RSS':>10} {'worker RSS':>10}"
    )
    for r in results:
        worker = f"{r['worker_rss_mb']:.0f} MB" if r["worker_rss_mb"] > 1 else "-"
        steady = f"{r['steady_rate']:8.1f}" if r["steady_rate"] else f"{'-':>8}"
        print(
            f"{r['engine']:32} {r['scored']:7,} {r['seconds']:8.1f} "
            f"{r['scored'] / r['seconds']:9.1f} {steady} {r['driver_rss_mb']:7.0f} MB {worker:>10}"
        )
    print(
        "records/s: the whole process, start-up included; steady/s: between the first and the "
        "last full chunk (model loaded, workers warm), the rate a long backfill runs at"
    )
    local, dask = (r["scored"] / r["seconds"] for r in results)
    print(
        "records past the gate (embedded): "
        + ", ".join(f"{r['engine']} {r['embedded']:,}" for r in results)
    )
    print(f"ratio dask/local: {dask / local:.2f} end to end", end="")
    rates = {"local": local, f"dask ({args.workers} workers)": dask}
    if all(r["steady_rate"] for r in results):
        local, dask = (r["steady_rate"] for r in results)
        print(f", {dask / local:.2f} steady")
        rates = {"local": local, f"dask ({args.workers} workers)": dask}
    else:
        print()
    for name, rate in rates.items():
        projected = ", ".join(f"{n:,} records {duration(n / rate)}" for n in PROJECTIONS)
        print(f"projected at the {name} rate: {projected}")


if __name__ == "__main__":
    main()
