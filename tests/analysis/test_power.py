"""Power planning by simulation: the log-rank it runs is SciPy's, its size is α, and its power
grows with the change and with the probes, as a reader of ``mystery plan --power`` assumes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mystery.analysis.power import (
    ALPHA,
    TARGET,
    baseline_median,
    logrank_z,
    monte_carlo_se,
    plan_power,
    rejection_rate,
)
from mystery.study.model import Profile
from mystery.timings.baseline import Baseline, profile_pool

CUTOFF = 7 * 86400.0


def lognormal_baseline(*, brands: int = 10, per_brand: int = 4, rate: float = 0.8,
                       before: int | None = None, points: int = 2000) -> Baseline:
    """A continuous, skewed baseline (median 1 h, a fifth never answering)."""
    profile = Profile.model_validate({"answer_rate": rate, "ack_median": "1h",
                                      "ack_spread": 1.0})
    times, answered = profile_pool(profile, CUTOFF)
    assert times.size == 1000 and points >= 1000
    return Baseline("x", "test", None if before is None else "earlier", times, answered,
                    before, per_brand, brands, CUTOFF)


def test_the_batched_log_rank_is_scipys_statistic_with_ties_and_censoring() -> None:
    rng = np.random.default_rng(11)
    compared = 0
    for _ in range(200):
        n0, n1 = (int(v) for v in rng.integers(1, 12, size=2))
        times = np.round(rng.lognormal(0, 1, size=(4, n0 + n1)), 1)  # ties on purpose
        answered = rng.random((4, n0 + n1)) < 0.7
        later = np.broadcast_to(np.r_[np.zeros(n0, bool), np.ones(n1, bool)], times.shape)
        z = logrank_z(times, answered, later)
        for row in range(4):
            x, t, e = later[row], times[row], answered[row]
            with np.errstate(all="ignore"):
                reference = stats.logrank(
                    stats.CensoredData.right_censored(t[x], ~e[x]),
                    stats.CensoredData.right_censored(t[~x], ~e[~x])).statistic
            if np.isfinite(reference):
                assert z[row] == pytest.approx(reference, rel=1e-9, abs=1e-12)
                compared += 1
            else:  # no answer anywhere: undefined in SciPy, never a rejection here
                assert z[row] == 0.0
    assert compared > 700


def test_with_no_change_the_test_rejects_about_alpha_of_the_time() -> None:
    simulations = 4000
    size = rejection_rate(lognormal_baseline(), 1.0, simulations=simulations, seed=3)
    # Three Monte Carlo standard errors of a rate of α from 4,000 studies: ±0.0103.
    tolerance = 3 * monte_carlo_se(ALPHA, simulations)
    assert abs(size - ALPHA) < tolerance, size


def test_power_grows_with_the_change_in_either_direction() -> None:
    baseline = lognormal_baseline(rate=1.0)
    faster = [rejection_rate(baseline, f, simulations=1000) for f in (1.0, 0.8, 0.6, 0.4)]
    slower = [rejection_rate(baseline, f, simulations=1000) for f in (1.0, 1.25, 1.6, 2.5)]
    assert faster == sorted(faster) and faster[-1] > 0.9 and faster[0] < 0.1
    assert slower == sorted(slower) and slower[-1] > 0.9


def test_power_grows_with_the_probes_per_brand() -> None:
    baseline = lognormal_baseline(rate=1.0)
    powers = [rejection_rate(baseline, 0.75, per_brand=k, simulations=1000) for k in (2, 8, 32)]
    assert powers[0] < powers[1] < powers[2]
    assert powers[2] > 0.9


def test_probes_that_never_answer_sap_the_power() -> None:
    """Known of the log-rank test, and why the output names the earlier year's unanswered
    share: a fifth never answering in both years costs most of the power to see a change."""
    every = rejection_rate(lognormal_baseline(rate=1.0), 0.4, simulations=1000)
    most = rejection_rate(lognormal_baseline(rate=0.8), 0.4, simulations=1000)
    assert every > 0.9 and most < every - 0.3


def test_the_smallest_detectable_change_is_where_power_crosses_80_percent() -> None:
    baseline = lognormal_baseline()
    report = plan_power([baseline], simulations=1000, seed=5)
    faster, slower = report.detectable
    assert faster.direction == "faster" and slower.direction == "slower"
    assert faster.factor is not None and slower.factor is not None
    assert 0 < faster.factor < 1 < slower.factor
    for d in (faster, slower):
        assert d.factor is not None
        assert rejection_rate(baseline, d.factor, seed=5) >= TARGET
        nearer = 1 + (d.factor - 1) * 0.95  # a change 5 % smaller misses the target
        assert rejection_rate(baseline, nearer, seed=5) < TARGET
        assert d.power >= TARGET and d.power_se == pytest.approx(
            math.sqrt(d.power * (1 - d.power) / 1000))
        assert (d.probes_before, d.probes_after) == (40, 40)  # both years: this plan
    assert plan_power([baseline], simulations=1000, seed=5) == report  # seeded


def test_probes_per_brand_for_a_named_change() -> None:
    baseline = lognormal_baseline(per_brand=2)
    report = plan_power([baseline], simulations=600, seed=2, detect=0.3)
    faster = next(n for n in report.needed if n.direction == "faster")
    assert faster.factor == pytest.approx(0.7) and faster.per_brand is not None
    assert faster.plan_power < TARGET <= faster.power
    assert (faster.probes_before, faster.probes_after) == (faster.per_brand * 10,) * 2
    fewer = math.floor(faster.per_brand * 0.85)
    assert rejection_rate(baseline, 0.7, per_brand=fewer, simulations=600, seed=2) < TARGET


def test_a_small_earlier_year_caps_what_any_plan_can_detect() -> None:
    baseline = lognormal_baseline(before=10)
    report = plan_power([baseline], simulations=300, seed=1, detect=0.2)
    for needed in report.needed:
        assert needed.per_brand is None and needed.power < TARGET
        assert needed.probes_before == 10 and needed.probes_after == 10 * 1000


def test_a_profile_is_laid_out_on_its_quantiles() -> None:
    profile = Profile.model_validate({"answer_rate": 0.6, "ack_median": "2h",
                                      "ack_spread": 0.8})
    times, answered = profile_pool(profile, CUTOFF)
    assert answered.mean() == pytest.approx(0.6)
    assert np.median(times[answered]) == pytest.approx(7200, rel=0.01)
    assert (times[~answered] == CUTOFF).all()
    silent = profile_pool(Profile.model_validate({"answer_rate": 0.0}), CUTOFF)
    assert not silent[1].any()
    base = lognormal_baseline(rate=1.0)
    assert baseline_median(base) == pytest.approx(3600, rel=0.01)
    assert baseline_median(lognormal_baseline(rate=0.4)) is None  # unknown, not a number


@pytest.mark.parametrize("factor", [0.3, 5.0])
def test_power_agrees_with_an_independent_simulation_using_scipys_log_rank(
    factor: float,
) -> None:
    """The whole path (draws, scaling, censoring past the cutoff) against a reference written
    here with SciPy: on uk-retail 2025's own 30 probes, 30 new probes against them."""
    from pathlib import Path

    from mystery.timings import schema

    repo = Path(__file__).resolve().parents[2]
    earlier = schema.read_csv(repo / "results" / "uk-retail-2025" / "timings.csv")
    answered = (earlier["status"] == "answered").to_numpy()
    times = np.where(answered, earlier["ack_seconds"].fill_null(0).to_numpy(),
                     earlier["cutoff_seconds"].to_numpy()).astype(np.float64)
    baseline = Baseline("x", "uk-retail-2025", "uk-retail-2025", times, answered, times.size,
                        3, 10, CUTOFF)
    if factor > 1:  # the slow-down pushes some answers past the cutoff: they are censored
        assert (times[answered] * factor > CUTOFF).any()
    simulations = 1000
    ours = rejection_rate(baseline, factor, simulations=simulations, seed=9)
    rng = np.random.default_rng(2024)
    rejected = 0
    for _ in range(simulations):
        i = rng.integers(0, times.size, times.size)
        j = rng.integers(0, times.size, 30)
        later = np.where(answered[j], times[j] * factor, CUTOFF)
        later_answered = answered[j] & (later <= CUTOFF)
        result = stats.logrank(
            stats.CensoredData.right_censored(np.minimum(later, CUTOFF), ~later_answered),
            stats.CensoredData.right_censored(times[i], ~answered[i]))
        rejected += bool(result.pvalue < ALPHA)
    reference = rejected / simulations
    # Two independent estimates: their difference has a standard error √2 times one's.
    tolerance = 4 * math.sqrt(2) * monte_carlo_se(reference, simulations)
    assert abs(ours - reference) < tolerance, (ours, reference)
