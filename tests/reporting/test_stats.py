"""Small-sample statistics: Wilson intervals and the exact McNemar test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_toolsel.reporting.stats import mcnemar_exact, wilson_interval


@pytest.mark.parametrize(
    ("successes", "total", "low", "high"),
    [
        (16, 20, 0.5840, 0.9193),
        (10, 20, 0.2993, 0.7007),
        (0, 20, 0.0, 0.1611),
        (20, 20, 0.8389, 1.0),
        (1, 1, 0.2065, 1.0),
        (50, 100, 0.4038, 0.5962),
    ],
)
def test_wilson_interval_known_values(successes, total, low, high):
    assert wilson_interval(successes, total) == pytest.approx((low, high), abs=5e-4)


def test_wilson_interval_of_nothing_is_everything():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_is_symmetric_under_swapping_success_and_failure():
    low, high = wilson_interval(4, 20)
    assert wilson_interval(16, 20) == pytest.approx((1 - high, 1 - low))


def test_wilson_interval_narrows_with_more_cases():
    (low20, high20), (low200, high200) = wilson_interval(16, 20), wilson_interval(160, 200)
    assert low20 < low200 < 0.8 < high200 < high20


def test_wilson_interval_wider_z_is_wider():
    low95, high95 = wilson_interval(16, 20)
    low99, high99 = wilson_interval(16, 20, z=2.5758293035489)
    assert low99 < low95 and high95 < high99
    assert (low99, high99) == pytest.approx((0.5121, 0.9384), abs=5e-4)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_contains_the_observed_rate(pair):
    successes, total = pair
    low, high = wilson_interval(successes, total)
    rate = successes / total
    assert 0.0 <= low <= high <= 1.0
    assert low - 1e-12 <= rate <= high + 1e-12
    if successes == 0:
        assert low == pytest.approx(0.0, abs=1e-12)
    if successes == total:
        assert high == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("fixed", "regressed", "p"),
    [
        (16, 0, 2 * 0.5**16),
        (3, 3, 1.0),
        (0, 0, 1.0),
        (1, 0, 1.0),  # one discordant pair proves nothing: 2 * 1/2
        (5, 0, 0.0625),
        (6, 0, 0.03125),
        (10, 2, 2 * (1 + 12 + 66) / 4096),  # 0.0386, as scipy.stats.binomtest(2, 12) gives
        (7, 3, 0.34375),
    ],
)
def test_mcnemar_exact_known_values(fixed, regressed, p):
    assert mcnemar_exact(fixed, regressed) == pytest.approx(p)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 300), st.integers(0, 300))
def test_mcnemar_exact_is_a_symmetric_probability(fixed, regressed):
    p = mcnemar_exact(fixed, regressed)
    assert p == mcnemar_exact(regressed, fixed)
    assert 0.0 < p <= 1.0
    if fixed == regressed:
        assert p == 1.0


def test_mcnemar_exact_shrinks_as_the_imbalance_grows():
    ps = [mcnemar_exact(fixed, 0) for fixed in range(1, 12)]
    assert ps == sorted(ps, reverse=True)
    assert ps[-1] == pytest.approx(2 * 0.5**11)
