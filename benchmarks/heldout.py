"""A model that has not seen the records a benchmark scores.

The shared stream is the training stream: the shipped model was trained on every record of
it, so its text-only gate screens those records out more easily than new ones, and their
vectors ship in ``models/``. A benchmark that wants the speed of scoring *new* papers
trains a model, with ``evla train --no-eval``, on a copy of ``seeds/`` holding only what
was known before a cut date (the rolling protocol's rule: stream records announced
before it; survey papers published before it or undated), drops its shipped vectors,
and scores the stream records from the cut on.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CUT = date(2025, 8, 4)


def heldout_model(cut: date, directory: Path, env: dict) -> tuple[dict, list[dict]]:
    """Train the model of ``cut`` under ``directory``; returns the environment that points
    ``evla`` at it (``EVLA_SEEDS``, ``EVLA_MODELS``) and the stream records from the cut on,
    in stream order."""
    sys.path.insert(0, str(ROOT))
    from evla_miner.core.jsonl import read_jsonl
    from evla_miner.core.settings import SEED_PAPERS_FILE, seeds_dir
    from evla_miner.scoring.embed import STORE_GLOB
    from evla_miner.scoring.training import record_published

    source, seeds, models = seeds_dir(), directory / "seeds", directory / "models"
    shutil.copytree(source, seeds, ignore=shutil.ignore_patterns("training"))
    (seeds / "training").mkdir()
    stream = sorted((source / "training").glob("*.jsonl.gz"))[0]
    known, later = [], []
    with gzip.open(stream, "rt") as handle:
        for line in handle:
            published = record_published(json.loads(line))
            (known if published is not None and published < cut else later).append(line)
    with gzip.open(seeds / "training" / stream.name, "wt") as handle:
        handle.writelines(known)
    positives = stream.with_name(stream.name.replace(".jsonl.gz", ".positives.jsonl"))
    shutil.copy(positives, seeds / "training")
    survey = [
        r
        for r in read_jsonl(source / SEED_PAPERS_FILE)
        if (published := record_published(r)) is None or published < cut
    ]
    (seeds / SEED_PAPERS_FILE).write_text("".join(json.dumps(r) + "\n" for r in survey))

    evla = str(Path(sys.executable).with_name("evla"))
    train_env = {**env, "EVLA_SEEDS": str(seeds), "EVLA_DB": str(directory / "train.db")}
    subprocess.run([evla, "init"], env=train_env, check=True, capture_output=True)
    subprocess.run(
        [evla, "train", "--no-eval", "--out", str(models)],
        env=train_env,
        check=True,
        capture_output=True,
    )
    for path in models.glob(STORE_GLOB):
        path.unlink()
    return {**env, "EVLA_SEEDS": str(seeds), "EVLA_MODELS": str(models)}, [
        json.loads(line) for line in later
    ]
