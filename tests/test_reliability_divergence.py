"""NaN, inf and 100x loss spikes injected at seeded steps: DivergenceGuard rolls back bit for bit.

A handful of the stress suite's runs (``make stress`` runs 24): each ends with finite weights and
a lower LR, catches exactly the faults it must, and after each rollback holds exactly the weights
of the snapshot it went back to.
"""

from __future__ import annotations

import math

import pytest
from stress import divergence


@pytest.mark.parametrize("seed", [0, 5, 10, 17, 19])
def test_injected_faults_are_rolled_back_exactly(seed: int) -> None:
    result = divergence.inject(seed)
    assert result.passed, result.detail


def test_the_seeds_here_cover_nan_inf_spikes_and_several_snapshot_intervals() -> None:
    plans = [divergence.plan(seed) for seed in (0, 5, 10, 17, 19)]
    kinds = {
        "nan" if math.isnan(f) else "inf" if math.isinf(f) else "spike" for p, _ in plans for f in p.values()
    }
    assert kinds == {"nan", "inf", "spike"}
    assert len({every for _, every in plans}) >= 3
