"""Small-sample statistics for accuracy reports: 20 cases are roughly +-9 points, so say so."""

from __future__ import annotations

from math import comb, sqrt

Z95 = 1.959963984540054


def wilson_interval(successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (sane at 0/n and n/n, unlike Wald)."""
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(fixed: int, regressed: int) -> float:
    """Two-sided exact McNemar p-value on the discordant pairs (a binomial test at p = 1/2)."""
    n = fixed + regressed
    if n == 0:
        return 1.0
    k = min(fixed, regressed)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)
