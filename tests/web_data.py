"""A small, hostile triage db shared by the web tests (unit and browser).

Candidates are real-looking arXiv records written for these tests; one has a
``<script>`` title and HTML in its authors and abstract, as anything from
arXiv could. Their ``scores`` rows stand in for the classifier's output (the
web page only reads them); the ranking itself comes from the real
``evla_miner.review.propose.list_proposals``.
"""

from __future__ import annotations

from pathlib import Path

from evla_miner.core.db import dumps, now_iso, open_db
from evla_miner.core.records import paper_from_snapshot, upsert_papers
from evla_miner.core.settings import seeds_dir
from evla_miner.ingest.seeds import init_db

SURVEY_NEIGHBOUR = "2406.09246"  # OpenVLA, a seed paper under quantization
XSS_ID = "2510.00002"
XSS_TITLE = "<script>window.__pwned = 1</script> TinyVLA & Friends on a Microcontroller"

CANDIDATES = [
    # id, title, authors, abstract, published (v1), relevance, [(leaf, score), ...]
    (
        "2510.00001",
        "KV-Reuse: Caching Visual Tokens for Efficient VLA Inference",
        "Ada Lovelace, Alan Turing",
        "We reuse key/value caches of static visual tokens across control steps and prune the "
        "rest, "
        "cutting VLA latency by 2x with no loss of success rate.",
        "Mon, 6 Oct 2025 00:00:00 GMT",
        0.93,
        [("model.compression.token_optimization", 0.88), ("model.arch.efficient_attention", 0.41)],
    ),
    (
        XSS_ID,
        XSS_TITLE,
        'Mallory <img src=x onerror="window.__pwned=2">, Eve O\'Neil',
        'An abstract with <b>markup</b> and <a href="javascript:alert(1)">a link</a>: small VLA '
        "backbones "
        "for microcontrollers.",
        "Tue, 7 Oct 2025 00:00:00 GMT",
        0.81,
        [("model.arch.lightweight_components", 0.77), ("model.compression.quantization", 0.30)],
    ),
    (
        "2509.20003",
        "Quantized Diffusion Policies for Edge Robots",
        "Grace Hopper",
        "Four-bit weights and activations for diffusion action heads on embedded GPUs.",
        "Mon, 29 Sep 2025 00:00:00 GMT",
        0.74,
        [("model.compression.quantization", 0.81), ("model.arch.efficient_action_decoding", 0.35)],
    ),
    (
        "2509.20004",
        "Scaling Simulation Data for Robot Manipulation Policies",
        "Barbara Liskov, Edsger Dijkstra",
        "Procedurally generated simulation scenes give cheap demonstrations for VLA pretraining.",
        "Tue, 30 Sep 2025 00:00:00 GMT",
        0.58,
        [("data.collection.simulation", 0.69), ("training.pretraining.data_efficient", 0.22)],
    ),
]
CANDIDATE_IDS = [c[0] for c in CANDIDATES]


def build(path: Path) -> Path:
    """Create the test db at ``path``: seeds, four candidates, their scores."""
    db = open_db(path)
    init_db(db, seeds_dir())
    upsert_papers(
        db,
        [
            paper_from_snapshot(
                {
                    "id": pid,
                    "title": title,
                    "authors": authors,
                    "abstract": abstract,
                    "categories": "cs.RO cs.CV",
                    "versions": [{"version": "v1", "created": created}],
                },
                source="test",
            )
            for pid, title, authors, abstract, created, _, _ in CANDIDATES
        ],
    )
    neighbour = db["papers"].get(SURVEY_NEIGHBOUR)["title"]
    db["scores"].upsert_all(
        [
            {
                "paper_id": pid,
                "model": "test",
                "relevance": relevance,
                "categories": dumps([{"id": leaf, "score": score} for leaf, score in leaves]),
                "unsure": 0,
                "explanation": dumps(
                    {
                        "nearest": [
                            {"id": SURVEY_NEIGHBOUR, "title": neighbour, "similarity": 0.81}
                        ],
                        "terms": ["token", "cache"],
                    }
                ),
                "scored_at": now_iso(),
            }
            for pid, _, _, _, _, relevance, leaves in CANDIDATES
        ],
        pk="paper_id",
    )
    db.close()
    return path
