"""Everything a range test could disturb in a model and the process, saved and put back exactly."""

from __future__ import annotations

import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch


def snapshot(model: pl.LightningModule) -> dict[str, Any]:
    try:
        attached = model.trainer
    except RuntimeError:
        attached = None
    return {
        "weights": {name: value.detach().clone() for name, value in model.state_dict().items()},
        "device": next((p.device for p in model.parameters()), None),
        "training": model.training,
        "trainer": attached,
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def restore(model: pl.LightningModule, saved: dict[str, Any]) -> None:
    if saved["device"] is not None:
        model.to(saved["device"])  # the sweep's Trainer moves the model to the CPU when it ends
    model.load_state_dict(saved["weights"])
    model.train(saved["training"])
    model.trainer = saved["trainer"]
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] is not None:
        torch.cuda.set_rng_state_all(saved["cuda"])
    random.setstate(saved["python"])
    np.random.set_state(saved["numpy"])
