"""The Dask engine of ``evla backfill`` (the optional extra ``evla-miner[cluster]``).

Imported only when ``--engine dask`` is asked for. Each worker gets one
``ModelPlugin``: the embedder (its model loads lazily, on the worker's first chunk,
once per worker process) and the classifier, pickled once at registration instead of
with every task. The driver submits chunks, keeps at most ``2 x workers`` running
(``as_completed`` tops up as each finishes) and hands results back in file order; it
alone writes the database. See ``pipeline.backfill`` for why Dask.

Workers of an existing cluster (``--address``) need the same ``evla-miner`` version
installed: tasks and the plugin are pickled by reference to its modules.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from typing import Any

from distributed import Client, LocalCluster, as_completed, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from ..scoring.chunk_scoring import ScoreResult, ScoreTask, embed_and_score

PLUGIN_NAME = "evla-backfill-model"


class ModelPlugin(WorkerPlugin):
    """Holds one embedder and one classifier per worker."""

    name = PLUGIN_NAME

    def __init__(self, embedder: Any, model: Any, torch_threads: int | None = None):
        self.embedder = embedder
        self.model = model
        self.torch_threads = torch_threads

    def setup(self, worker: Any) -> None:
        if self.torch_threads and type(self.embedder).__name__ == "SentenceTransformerEmbedder":
            import torch

            # workers share the machine's cores: without this each one would use them all
            torch.set_num_threads(self.torch_threads)


def score_on_worker(task: ScoreTask) -> ScoreResult:
    """The task every chunk runs: embed and score with this worker's plugin."""
    plugin = get_worker().plugins[PLUGIN_NAME]
    assert isinstance(plugin, ModelPlugin)
    return embed_and_score(task, plugin.embedder, plugin.model)


class DaskEngine:
    """Chunks on a Dask cluster: ``address`` of a running scheduler, else a LocalCluster."""

    name = "dask"

    def __init__(
        self,
        embedder: Any,
        model: Any,
        address: str | None = None,
        workers: int | None = None,
        processes: bool = True,
    ):
        self.cluster: LocalCluster | None = None
        torch_threads = None
        if address:
            self.client = Client(address, timeout="30s")
        else:
            cores = os.cpu_count() or 1
            n = workers or cores
            torch_threads = max(1, cores // n)
            self.cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
                silence_logs=40,  # logging.ERROR
            )
            self.client = Client(self.cluster)
        self.client.register_plugin(ModelPlugin(embedder, model, torch_threads))
        self.workers = max(1, len(self.client.scheduler_info()["workers"]))
        self.max_running = 2 * self.workers

    def describe(self) -> str:
        where = "LocalCluster" if self.cluster else f"scheduler {self.client.scheduler.address}"
        return f"dask ({where}, {self.workers} workers)"

    def map(self, items: Iterator[tuple[Any, ScoreTask]]) -> Iterator[tuple[Any, ScoreResult]]:
        """Results in submission order, at most ``max_running`` chunks being computed and
        at most twice that many held (so memory stays bounded whatever the file size)."""
        items = iter(items)
        pending: deque = deque()  # (meta, future) in file order, not yet handed back
        done: dict[Any, ScoreResult] = {}  # by future key
        running = as_completed()
        exhausted = False
        while True:
            while (
                not exhausted
                and running.count() < self.max_running
                and len(pending) < (2 * self.max_running)
            ):
                try:
                    meta, task = next(items)
                except StopIteration:
                    exhausted = True
                    break
                future = self.client.submit(score_on_worker, task, pure=False)
                pending.append((meta, future))
                running.add(future)
            if not pending:
                return
            if not running.is_empty():
                future = next(running)
                done[future.key] = future.result()  # a worker's exception is raised here
            while pending and pending[0][1].key in done:
                meta, future = pending.popleft()
                yield meta, done.pop(future.key)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
