"""Every bad argument is refused when the schedule is built, with the one house error format.

Each message names the argument in backticks and echoes the value received, so each ``match``
checks both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import torch

from lightning_lr import ReduceOnPlateau
from lightning_lr.schedule_lr import ScheduleLR
from lightning_lr.schedules import (
    Constant,
    CosineDecay,
    CosineRestarts,
    Cyclic,
    ExponentialDecay,
    Hold,
    InverseSqrt,
    InverseTimeDecay,
    Join,
    LinearSchedule,
    MultiStepDecay,
    OneCycle,
    PolynomialDecay,
    StepDecay,
    Warmup,
    WarmupStableDecay,
)
from lightning_lr.settings import SCHEDULE_CLASSES as SCHEDULES
from lightning_lr.settings import schedule_from_config

NAN, INF = float("nan"), float("inf")
KNOWN = re.escape(", ".join(sorted(SCHEDULES)))
V, T = ValueError, TypeError


def schedule_lr(schedule: Any) -> ScheduleLR:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    return ScheduleLR(optimizer, schedule)


def _case(error: type[Exception], match: str, build: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """One bad construction: ``build(*args, **kwargs)`` must raise ``error`` matching ``match``."""
    shown = [repr(arg) for arg in args] + [f"{key}={value!r}" for key, value in kwargs.items()]
    case_id = f"{build.__name__}({', '.join(shown)})"
    return pytest.param(partial(build, *args, **kwargs), error, match, id=case_id[:70])


# fmt: off
CASES = [
    # lengths: zero, negative, bools, fractions outside (0, 1], NaN/inf, bad strings, wrong types
    _case(V, r"`step_size` must be >= 1, got 0\.", StepDecay, 0),
    _case(V, r"`step_size` must be >= 1, got -3\.", StepDecay, -3),
    _case(T, r"`step_size` must be a length .*got True\.", StepDecay, True),
    _case(V, r"`step_size` as a float is a fraction .*\(0, 1\], got 1\.5\.", StepDecay, 1.5),
    _case(V, r"`step_size` as a float .*, got 0\.0\.", StepDecay, 0.0),
    _case(V, r"`step_size` as a float .*, got inf\.", StepDecay, INF),
    _case(V, r"`step_size` as a float .*, got nan\.", StepDecay, NAN),
    _case(V, r"`step_size` is not a length, got '3 weeks'\. .*epochs", StepDecay, "3 weeks"),
    _case(V, r"`step_size` must be longer than zero, got '0 epochs'", StepDecay, "0 epochs"),
    _case(V, r"`step_size` must be a whole number of steps, got '1\.5 steps'", StepDecay, "1.5 steps"),
    _case(T, r"`step_size` must be a length .*got \[3\] of type list\.", StepDecay, [3]),
    _case(V, r"`decay_steps` must be >= 1, got 0\.", InverseTimeDecay, 0.5, decay_steps=0),
    _case(V, r"`total_steps` must be >= 1, got -100\.", CosineDecay, -100),
    _case(T, r"`total_steps` must be a length .*got None of type NoneType", PolynomialDecay, None),
    # numbers: ranges, NaN/inf, bools, strings
    _case(V, r"`gamma` must lie in \(0, 1\], got 0\.0\. A decay needs", StepDecay, 10, gamma=0.0),
    _case(V, r"`gamma` must lie in \(0, 1\], got 1\.5\.", StepDecay, 10, gamma=1.5),
    _case(V, r"`gamma` must be finite, got nan\.", StepDecay, 10, gamma=NAN),
    _case(T, r"`gamma` must be a number, got '0\.1' of type str\.", StepDecay, 10, gamma="0.1"),
    _case(V, r"`gamma` must lie in \(0, 1\], got -0\.5\.", ExponentialDecay, -0.5),
    _case(T, r"`gamma` must be a number, got True of type bool\.", ExponentialDecay, True),
    _case(V, r"`factor` must be > 0, got 0\.", Constant, 0),
    _case(V, r"`factor` must be finite, got inf\.", Constant, INF),
    _case(V, r"`decay_rate` must be >= 0, got -1\.0\.", InverseTimeDecay, -1.0),
    _case(V, r"`power` must be > 0, got 0\.", PolynomialDecay, 100, power=0),
    _case(V, r"`end_factor` must lie in \[0, 1\], got 1\.5", PolynomialDecay, 100, end_factor=1.5),
    _case(V, r"`start_factor` must be >= 0, got -0\.1\.", LinearSchedule, -0.1, 1.0, 10),
    _case(V, r"`end_factor` must be finite, got inf\.", LinearSchedule, 0.1, INF, 10),
    _case(V, r"`min_factor` must lie in \[0, 1\], got -0\.1", CosineDecay, 100, min_factor=-0.1),
    # milestones
    _case(V, r"`milestones` must be strictly increasing, got \[30, 20\]", MultiStepDecay, [30, 20]),
    _case(V, r"`milestones` must be strictly increasing, got \[10, 10\]", MultiStepDecay, [10, 10]),
    _case(V, r"`milestones` must not be empty, got \[\]\. Use Constant", MultiStepDecay, []),
    _case(T, r"`milestones` must be a list of lengths, got '30, 80'", MultiStepDecay, "30, 80"),
    _case(V, r"`milestones\[1\]` must be >= 1, got -5\.", MultiStepDecay, [10, -5]),
    # restarts
    _case(V, r"`cycle_mult` must lie in .*, got 0\.5\. Cycles", CosineRestarts, 10, cycle_mult=0.5),
    _case(V, r"`peak_decay` must lie in \(0, 1\], got 0\.", CosineRestarts, 10, peak_decay=0),
    _case(V, r"`max_cycles` must be >= 1, got 0\. Use None", CosineRestarts, 10, max_cycles=0),
    _case(T, r"`max_cycles` must be an integer, got 2\.0", CosineRestarts, 10, max_cycles=2.0),
    # cyclic and 1cycle
    _case(V, r"`mode` must be one of 'triangular', .*got 'triangle'", Cyclic, 10, mode="triangle"),
    _case(V, r"`base_factor` must lie in \[0, 1\), got 1\.0\. The peak", Cyclic, 10, base_factor=1.0),
    _case(V, r"`step_size_down` must be >= 1, got 0\.", Cyclic, 10, step_size_down=0),
    _case(V, r"`gamma` must lie in \(0, 1\], got 0\.", Cyclic, 10, mode="exp_range", gamma=0),
    _case(V, r"`total_steps`=10 is too short for `pct_start`=0\.1:", OneCycle, 10, pct_start=0.1),
    _case(V, r"`total_steps`=4 is too short for `pct_start`=0\.25: the rise would end where it starts",
          OneCycle, 4, pct_start=0.25, three_phase=True),
    _case(V, r"`pct_start` must lie in \[0, 1\], got 1\.5\.", OneCycle, 100, pct_start=1.5),
    _case(V, r"`base_momentum` must lie in \[0, 1\), got 1\.0\. Momentum and beta1 lie below 1",
          OneCycle, 100, base_momentum=1.0),
    _case(V, r"`max_momentum` must lie in \[0, 1\), got -0\.1\.", Cyclic, 10, max_momentum=-0.1),
    _case(T, r"`cycle_momentum` must be True or False, got 'no'", OneCycle, 100, cycle_momentum="no"),
    _case(V, r"`anneal` must be one of 'cos', 'linear', got 'cosine'", OneCycle, 100, anneal="cosine"),
    _case(V, r"`div_factor` must be > 0, got 0\.", OneCycle, 100, div_factor=0),
    _case(V, r"`final_div_factor` must be > 0, got -1\.0", OneCycle, 100, final_div_factor=-1.0),
    # warmup and WSD
    _case(V, r"`warmup_steps`=50 plus `decay_steps`=60 exceed `total_steps`=100\. Shorten",
          WarmupStableDecay, 100, 50, 60),
    _case(V, r"`warmup_steps` must be >= 0, got -1\.", WarmupStableDecay, 100, -1, 20),
    _case(V, r"`decay_steps` must be >= 1, got 0\.", WarmupStableDecay, 100, 10, 0),
    _case(V, r"`decay_shape` must be one of 'linear', 'cosine', '1-sqrt', got 'sqrt'",
          WarmupStableDecay, 100, 10, 20, decay_shape="sqrt"),
    _case(V, r"`min_factor` must lie in .*got 2\.0", WarmupStableDecay, 100, 10, 20, min_factor=2.0),
    _case(V, r"`warmup_shape` must be one of 'linear', 'cosine', '1-sqrt', got 'exponential'",
          WarmupStableDecay, 100, 10, 20, warmup_shape="exponential"),
    _case(V, r"`start_factor` must lie in \[0, 1\), got 1\.0\. Leave it out to start at `min_factor`",
          WarmupStableDecay, 100, 10, 20, start_factor=1.0),
    _case(T, r"`overlap` must be True or False, got 1", Warmup, Constant(), 10, overlap=1),
    # cosine: cycles, k-decay, tiling; inverse square root
    _case(V, r"`num_cycles` must be > 0, got 0\.0\. 0\.5 is half a cosine", CosineDecay, 100, num_cycles=0.0),
    _case(V, r"`k_decay` must be > 0, got -1\.0\. 1 is the plain cosine", CosineDecay, 100, k_decay=-1.0),
    _case(V, r"`tiled_steps`=100 and `tiled_cycles`=None must be given together",
          CosineRestarts, 10, tiled_steps=100),
    _case(V, r"`tiled_steps` must be >= 3, got 2\. Each cycle needs a step",
          CosineRestarts, 1, tiled_steps=2, tiled_cycles=3),
    _case(V, r"`cycle_mult` must be 1 when the cycles tile the run, got 2\.0",
          CosineRestarts, 10, 2.0, tiled_steps=100, tiled_cycles=3),
    _case(V, r"`timescale` must be >= 1, got 0\.", InverseSqrt, 0),
    _case(V, r"`timescale` as a float is a fraction of the run and must lie in \(0, 1\], got 2\.5",
          InverseSqrt, 2.5),
    _case(V, r"`warmup_steps` must be >= 0, got -1\.", Warmup, Constant(), -1),
    _case(V, r"`warmup_steps` is not a length, got '10 minutes'", Warmup, Constant(), "10 minutes"),
    _case(V, r"`shape` must be one of .*got 'quadratic'", Warmup, Constant(), 10, shape="quadratic"),
    _case(V, r"`start_factor` must lie in \(0, 1\), got 0\.0\. An exponential ramp cannot start from 0",
          Warmup, Constant(), 10, shape="exponential", start_factor=0.0),
    _case(V, r"`start_factor` must lie in \[0, 1\), got 1\.0", Warmup, Constant(), 10, start_factor=1.0),
    _case(T, r"`schedule` must be a Schedule, got <function", Warmup, lambda step: 1.0, 10),
    # composition
    _case(V, r"`boundaries` must hold one fewer entry than `schedules` \(1\), got \[10, 20\]",
          Join, [Constant(), Constant()], [10, 20]),
    _case(V, r"`boundaries` must be strictly increasing, got \[20, 10\]", Join, [Constant()] * 3, [20, 10]),
    _case(V, r"`schedules` must hold at least one schedule, got \[\]", Join, [], []),
    _case(T, r"`schedules\[1\]` must be a Schedule, got 'cosine'", Join, [Constant(), "cosine"], [10]),
    _case(T, r"`schedules` must be a list of schedules, got Constant\(", Join, Constant(), []),
    _case(T, r"`boundaries` must be a list of lengths, got 10\.", Join, [Constant(), Constant()], 10),
    _case(V, r"`boundaries\[0\]` must be >= 1, got 0\.", Join, [Constant(), Constant()], [0]),
    _case(V, r"`every` must be >= 1, got 0\.", Hold, Constant(), every=0),
    _case(T, r"`every` must be an integer, got 2\.0 of type float", Hold, Constant(), every=2.0),
    _case(T, r"`schedule` must be a Schedule, got ReduceOnPlateau\(", Hold, ReduceOnPlateau(), every=2),
    # the plateau policy
    _case(V, r"`factor` must lie in \(0, 1\), got 1\.0\. A reduction", ReduceOnPlateau, factor=1.0),
    _case(V, r"`mode` must be one of 'min', 'max', got 'minimum'", ReduceOnPlateau, mode="minimum"),
    _case(V, r"`patience` must be >= 0, got -1\.", ReduceOnPlateau, patience=-1),
    # the torch adapter
    _case(V, r"`schedule` CosineDecay\(total_steps=0\.5.* still has lengths in epochs or fractions",
          schedule_lr, CosineDecay(0.5)),
    _case(V, r"`schedule` Warmup\(.*'2 epochs'.* still has lengths .*\.resolve\(",
          schedule_lr, Warmup(StepDecay("2 epochs"), 10)),
    _case(T, r"`schedule` must be a lightning_lr Schedule, got ReduceOnPlateau\(",
          schedule_lr, ReduceOnPlateau()),
    _case(T, r"`schedule` must be a lightning_lr Schedule, got <function", schedule_lr, lambda step: 0.5),
    # configs
    _case(V, rf"`schedule` names an unknown class 'CosineDecays'\. Known names: {KNOWN};",
          schedule_from_config, {"class_path": "CosineDecays", "init_args": {"total_steps": 10}}),
    _case(V, rf"`schedule` names an unknown class 'torch\.optim\.SGD'\. Known names: {KNOWN};",
          schedule_from_config, {"class_path": "torch.optim.SGD"}),
    _case(V, r"`schedule\.schedule` names an unknown class 'Nope'",
          schedule_from_config, {"class_path": "Warmup", "init_args": {"schedule": {"class_path": "Nope"}}}),
    _case(T, r"`schedule` must be a Schedule or ReduceOnPlateau or a mapping .*got 'CosineDecay'",
          schedule_from_config, "CosineDecay"),
    _case(V, r"`gamma` must lie in \(0, 1\], got 2\.",
          schedule_from_config, {"class_path": "StepDecay", "init_args": {"step_size": 10, "gamma": 2}}),
    _case(V, r"`schedule\.init_args` has \['total_step'\], which CosineDecay does not take\. "
             r"It takes: k_decay, min_factor, num_cycles, total_steps",
          schedule_from_config, {"class_path": "CosineDecay", "init_args": {"total_step": 10}}),
]
# fmt: on

CONSTRUCTORS = {*SCHEDULES.values(), schedule_lr, schedule_from_config}


@pytest.mark.parametrize(("build", "error", "match"), CASES)
def test_bad_argument_is_refused_at_construction(
    build: partial[Any], error: type[Exception], match: str
) -> None:
    # Each case only builds: nothing is called or stepped, so the error cannot be deferred to use.
    assert build.func in CONSTRUCTORS
    with pytest.raises(error, match=match):
        build()


def test_the_table_covers_every_constructor() -> None:
    assert len(CASES) >= 30
    assert {case.values[0].func for case in CASES} == CONSTRUCTORS


def test_the_bad_config_message_lists_every_known_name() -> None:
    with pytest.raises(ValueError) as raised:
        schedule_from_config({"class_path": "Cosine"})
    for name in SCHEDULES:
        assert name in str(raised.value)


@pytest.mark.parametrize(
    ("step", "error", "match"),
    [
        (True, TypeError, r"`step` must be an integer optimizer step, got True"),
        (1.5, TypeError, r"`step` must be an integer optimizer step, got 1\.5"),
        (-1, ValueError, r"`step` must be >= 0, got -1"),
    ],
)
def test_a_schedule_refuses_a_step_that_is_not_a_step_index(
    step: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        CosineDecay(10)(step)
