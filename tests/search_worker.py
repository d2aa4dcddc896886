"""One LR-search worker: joins the study named on the command line and runs its trials.

Run by tests/test_search.py as a script, several at once on the same storage:
    python search_worker.py STORAGE_URL STUDY_NAME RUN_DIR N_TRIALS

With ``SEARCH_WORKER_HANG_FILE=PATH`` in the environment the worker writes PATH at the first
training batch of its first trial and then waits there, to be killed mid-trial.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import TinyRegression

from lightning_lr.search import SearchSpace, search_lr


class HangInTrial(pl.Callback):
    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self.path.write_text(str(os.getpid()))
        time.sleep(600)  # killed long before


def main(storage: str, study_name: str, run_dir: str, n_trials: int) -> None:
    torch.set_num_threads(1)
    hang = os.environ.get("SEARCH_WORKER_HANG_FILE")
    result = search_lr(
        TinyRegression,
        space=SearchSpace(lr=(1e-3, 1.0)),
        n_trials=n_trials,
        sampler="random",
        storage=storage,
        study_name=study_name,
        run_dir=run_dir,
        progress_bar=False,
        trainer_kwargs={
            "accelerator": "cpu",
            "max_epochs": 2,
            "limit_train_batches": 2,
            "num_sanity_val_steps": 0,
            "callbacks": [HangInTrial(hang)] if hang else [],
        },
    )
    print(f"worker done: {len(result.trials)} trials seen")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
