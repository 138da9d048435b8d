"""How far down a ranked queue a reviewer should read: the stopping rule behind "read the
top N" in ``evla propose``, the digest and the web page. Pure numpy, so the reviewer-facing
modules can use it without loading the classifier."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReadingDepth:
    """How far down a ranked queue a reviewer should read (see ``reading_depth``)."""

    papers: int
    expected_relevant: float


def reading_depth(
    probabilities: Sequence[float] | np.ndarray, share: float = 0.95, ranked: bool = False
) -> ReadingDepth:
    """The fewest top-ranked papers whose relevance probabilities add up to ``share`` of the
    queue's total: with calibrated probabilities, reading that many is expected to find
    ``share`` of the week's relevant papers. This is the stopping rule reviewers asked for
    ("when can I stop?"); the rolling evaluation reports how often it held. ``ranked``:
    the probabilities are already in the order the reviewer reads (a proposal list, which
    also weighs influence and recency); otherwise they are read most probable first."""
    p = np.asarray(probabilities, dtype=float)
    p = p if ranked else np.sort(p)[::-1]
    total = float(p.sum())
    if total <= 0:
        return ReadingDepth(0, 0.0)
    n = int(np.searchsorted(np.cumsum(p), share * total - 1e-12) + 1)
    return ReadingDepth(min(n, len(p)), total)
