"""Every example runs offline at smoke size."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_mixin_learns_with_per_layer_lr(capsys: pytest.CaptureFixture[str]) -> None:
    accuracy = _load("digits_mixin").main(["--max-epochs", "3", "--limit-train-batches", "10"])
    printed = capsys.readouterr().out
    assert accuracy > 0.5  # chance is 0.1
    assert "'head': 0.09" in printed and "'default': 0.3" in printed
