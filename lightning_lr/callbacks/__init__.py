"""Trainer callbacks of lightning_lr, one module each.

Their one public path is the package face: ``from lightning_lr import LRLogger``, and
``class_path: lightning_lr.LRLogger`` in a config. The names this package used to re-export still
resolve here, with a deprecation warning, for one release.
"""

import importlib
import warnings
from typing import Any

_MOVED = {
    "DivergenceGuard": "guard",
    "LRDiagnostics": "diagnostics",
    "LRFinder": "finder",
    "LRLogger": "lr_logger",
    "LRWarmup": "warmup",
    "OptimizerMode": "optimizer_mode",
    "PlateauResume": "plateau_resume",
    "ScheduleOverlay": "overlay",
    "WarmRestarts": "restarts",
}
"""The callbacks, by class name, and the module of this package that defines each."""


def __getattr__(name: str) -> Any:
    if name == "Warmup":  # the callback's name until it became LRWarmup, like LRLogger and LRFinder
        warnings.warn(
            "`lightning_lr.callbacks.Warmup` is deprecated and will be removed: the callback is "
            "`lightning_lr.LRWarmup` (the schedule is `lightning_lr.schedules.Warmup`).",
            DeprecationWarning,
            stacklevel=2,
        )
        name = "LRWarmup"
    elif name in _MOVED:
        warnings.warn(
            f"`lightning_lr.callbacks.{name}` is deprecated and will be removed: import it as "
            f"`lightning_lr.{name}`, its one public path.",
            DeprecationWarning,
            stacklevel=2,
        )
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MOVED[name]}"), name)


__all__: list[str] = []
"""Nothing: the callbacks are exported by the face, ``lightning_lr.<Name>``."""
