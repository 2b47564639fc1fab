"""Steps in a benchmark's history: where the median latency moved to a new level and stayed there.

Binary segmentation in the manner of E-Divisive (MongoDB's and Apache Otava's detectors): a permutation test
asks whether any split of the commits is stronger than chance; if so, ruptures places the split (least
squares on the log medians, so a slowdown of x% is the same step at any speed) and both sides are searched
again. Steps smaller than `min_effect` are dropped. The test adapts to the noise of the history itself, so
a noisy runner needs a larger step and a quiet one a smaller; the chance of a false step in a flat history
is `alpha`.

One commit's run-to-run noise blurs where a step begins; each step carries the commits it may have begun at
(90% of the split's likelihood), besides the most likely one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SEGMENT = 2  # commits on each side of a step: one commit alone is an outlier until the next confirms it
PERMUTATIONS = 999


@dataclass
class Step:
    index: int  # the first commit at the new level
    change: float  # new level / old level - 1 (+0.15: 15% slower)
    confidence: float  # 1 - the permutation test's p-value
    before_ms: float
    after_ms: float
    first_possible: int  # the step may have begun at any commit from first_possible to last_possible
    last_possible: int


def _split_strengths(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The split positions k (MIN_SEGMENT a side) and, for each series (rows), the between-segment sum of squares
    of splitting before k."""
    n = values.shape[-1]
    k = np.arange(MIN_SEGMENT, n - MIN_SEGMENT + 1)
    prefix = np.cumsum(values, axis=-1)[..., k - 1]
    total = values.sum(axis=-1, keepdims=True)
    left, right = prefix / k, (total - prefix) / (n - k)
    return k, k * (n - k) / n * (left - right) ** 2


def _split_strength(values: np.ndarray) -> np.ndarray:
    """For each series (rows), the strongest split's between-segment sum of squares."""
    return _split_strengths(values)[1].max(axis=-1)


def _p_value(window: np.ndarray, rng: np.random.Generator) -> float:
    observed = _split_strength(window[None])[0]
    shuffled = rng.permuted(np.broadcast_to(window, (PERMUTATIONS, window.size)), axis=1)
    return float((1 + np.sum(_split_strength(shuffled) >= observed - 1e-12)) / (PERMUTATIONS + 1))


def _likely_range(window: np.ndarray, best: int, mass: float = 0.9) -> tuple[int, int]:
    """The first and last split positions among the most likely ones that together hold `mass` of the likelihood
    (a Gaussian profile likelihood with the noise of the fitted split)."""
    k, strength = _split_strengths(window)
    n = window.size
    fitted = np.where(np.arange(n) >= best, window[best:].mean(), window[:best].mean())
    variance = max(float(np.mean((window - fitted) ** 2)), 1e-12)
    weights = np.exp((strength - strength.max()) / (2 * variance))
    order = np.argsort(-weights)
    kept = order[:np.searchsorted(np.cumsum(weights[order]) / weights.sum(), mass) + 1]
    return int(k[kept].min()), int(k[kept].max())


def _segment(values: np.ndarray, lo: int, hi: int, alpha: float, rng, found: list) -> None:
    import ruptures

    window = values[lo:hi]
    if window.size < 2 * MIN_SEGMENT:
        return
    p = _p_value(window, rng)
    if p > alpha:
        return
    best = ruptures.Binseg(model="l2", min_size=MIN_SEGMENT, jump=1).fit(window).predict(n_bkps=1)[0]
    first, last = _likely_range(window, best)
    found.append((lo + best, 1 - p, lo + first, lo + last))
    _segment(values, lo, lo + best, alpha, rng, found)
    _segment(values, lo + best, hi, alpha, rng, found)


def find_steps(medians, min_effect: float = 0.05, alpha: float = 0.01, seed: int = 0) -> list[Step]:
    """The steps in one series of per-commit medians (oldest first)."""
    values = np.log(np.asarray(medians, dtype=np.float64))
    if not np.isfinite(values).all():
        raise ValueError("medians must be positive and finite")
    found: list = []
    _segment(values, 0, values.size, alpha, np.random.default_rng(seed), found)
    found.sort()
    bounds = [0, *(f[0] for f in found), values.size]
    steps = []
    for i, (index, confidence, first, last) in enumerate(found, start=1):
        before, after = np.median(values[bounds[i - 1]:index]), np.median(values[index:bounds[i + 1]])
        change = float(np.exp(after - before) - 1)
        if abs(change) >= min_effect:
            steps.append(Step(index, change, confidence, float(np.exp(before)), float(np.exp(after)), first, last))
    return steps
