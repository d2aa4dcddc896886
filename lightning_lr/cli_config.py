"""What ``lightning-lr`` takes out of, or refuses in, a parsed config before it builds anything.

An ``lr`` given on the command line leaves the config's ``LRFinder`` out (the run trains at that
LR); LightningCLI's ``--optimizer``/``--lr_scheduler`` are refused on a model whose optimizer and
schedule the mixin builds.
"""

from __future__ import annotations

import importlib
from typing import Any

from lightning_lr.callbacks.finder import LRFinder
from lightning_lr.cli_errors import CommandLineError
from lightning_lr.mixin import ConfigureOptimizersMixin


def leave_out_finders(config: Any) -> list[str]:
    """Take every LRFinder out of the config's ``trainer.callbacks``; their class paths."""
    trainer = config.get("trainer")
    callbacks = None if trainer is None else trainer.get("callbacks")
    if not callbacks:
        return []
    listed = callbacks if isinstance(callbacks, list) else [callbacks]
    finders = [callback for callback in listed if _is_finder(callback)]
    if finders:
        trainer["callbacks"] = [callback for callback in listed if not _is_finder(callback)]
    return [str(finder.get("class_path")) for finder in finders]


def _is_finder(callback: Any) -> bool:
    if isinstance(callback, LRFinder):
        return True
    found = _import(str(getattr(callback, "get", lambda key: "")("class_path") or ""))
    return isinstance(found, type) and issubclass(found, LRFinder)


def _import(path: str) -> Any:
    module_name, _, attribute = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute, None)
    except (ImportError, ValueError):
        return None


def refuse_optimizer_flags(config: Any) -> None:
    """LightningCLI's ``--optimizer``/``--lr_scheduler`` would silently replace the mixin's own."""
    model = config.get("model")
    model_class = _import(str(model.get("class_path", ""))) if model is not None else None
    if not (isinstance(model_class, type) and issubclass(model_class, ConfigureOptimizersMixin)):
        return
    for key, hparam in (("optimizer", "optimizer"), ("lr_scheduler", "schedule")):
        given = config.get(key)
        if given is not None:
            path = str(given.get("class_path", given)) if hasattr(given, "get") else str(given)
            name = path.rsplit(".", 1)[-1]
            example = name.lower() if key == "optimizer" else f"{{class_path: {path}, init_args: {{...}}}}"
            raise CommandLineError(
                f"`--{key}` would replace the optimizer and schedule that ConfigureOptimizersMixin builds "
                f"for {model_class.__name__}, got {path!r}. Set the mixin's hparams instead, e.g. "
                f"--model.init_args.{hparam}={example} (with `lr`, `optimizer_kwargs` and `schedule`)."
            )
