"""Statistics of benchmark samples: summaries, ratio of medians with a confidence interval,
and the regression verdict (Mann-Whitney U on the raw samples plus a minimum effect)."""

from __future__ import annotations

import numpy as np


def summarize(samples_s) -> dict:
    """Latency statistics in milliseconds from raw per-call times in seconds."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise ValueError("no samples")
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
    return {
        "n": int(ms.size),
        "min_ms": float(ms.min()),
        "median_ms": float(np.median(ms)),
        "mean_ms": mean,
        "p90_ms": float(np.percentile(ms, 90)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "std_ms": std,
        "cv": std / mean if mean > 0 else 0.0,
    }


def ratio_of_medians(base, new, confidence: float = 0.95, resamples: int = 2000, seed: int = 0):
    """median(new) / median(base) and a bootstrap percentile confidence interval."""
    base, new = np.asarray(base, dtype=np.float64), np.asarray(new, dtype=np.float64)
    ratio = float(np.median(new) / np.median(base))
    rng = np.random.default_rng(seed)
    b = np.median(rng.choice(base, (resamples, base.size)), axis=1)
    n = np.median(rng.choice(new, (resamples, new.size)), axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(n / b, [tail, 100 - tail])
    return ratio, (float(low), float(high))


def compare_samples(base, new, min_effect: float = 0.10, alpha: float = 0.01) -> dict:
    """Verdict for one row: slower / faster only when the effect is both large and significant."""
    from scipy.stats import mannwhitneyu  # lazy: scipy.stats takes about 0.3 s; only comparisons need it

    ratio, (low, high) = ratio_of_medians(base, new)
    _, p_slower = mannwhitneyu(new, base, alternative="greater")
    _, p_faster = mannwhitneyu(new, base, alternative="less")
    if ratio > 1 + min_effect and p_slower < alpha:
        verdict = "slower"
    elif ratio < 1 / (1 + min_effect) and p_faster < alpha:
        verdict = "faster"
    else:
        verdict = "same"
    return {"ratio": ratio, "ci_low": low, "ci_high": high, "p_slower": float(p_slower),
            "p_faster": float(p_faster), "verdict": verdict}
