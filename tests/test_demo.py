"""The MNIST-1D datamodule and CNN shared by the demo, examples and benchmarks."""

from __future__ import annotations

import pytest
import torch

from lightning_lr.demo import MNIST1DClassifier, MNIST1DDataModule, make_mnist1d


def test_mnist1d_is_generated_offline_with_the_published_split() -> None:
    data = make_mnist1d(seed=42)
    assert data["x"].shape == (4000, 40) and data["x_test"].shape == (1000, 40)
    assert set(data["y"].tolist()) == set(range(10))
    assert torch.equal(make_mnist1d(seed=42)["x"], data["x"])


def test_datamodule_splits_without_overlap() -> None:
    module = MNIST1DDataModule(batch_size=100, val_fraction=0.1, train_size=500)
    module.setup("fit")
    assert len(module.train_set) == 500 and len(module.val_set) == 400 and len(module.test_set) == 1000
    train_rows = {tuple(module.train_set[i][0].tolist()) for i in range(len(module.train_set))}
    val_rows = {tuple(module.val_set[i][0].tolist()) for i in range(len(module.val_set))}
    assert not train_rows & val_rows
    x, y = next(iter(module.train_dataloader()))
    assert x.shape == (100, 40) and y.shape == (100,)


def test_cnn_maps_sequences_to_ten_logits() -> None:
    model = MNIST1DClassifier()
    assert model(torch.randn(3, 40)).shape == (3, 10)


@pytest.mark.parametrize(
    ("argument", "value"), [("batch_size", 0), ("val_fraction", 1.0), ("train_size", -1)]
)
def test_datamodule_refuses_bad_sizes(argument: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"`{argument}`"):
        MNIST1DDataModule(**{argument: value})
