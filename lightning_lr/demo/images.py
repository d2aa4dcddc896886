"""Image data sets and a small image CNN for the examples.

scikit-learn's 8x8 digits are the offline image data set; MNIST and CIFAR-100 are read from a
folder the user already has (never downloaded). :class:`ImageClassifier` is a small CNN for any
of them, with every hyperparameter of :class:`~lightning_lr.ConfigureOptimizersMixin`.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

from lightning_lr._validate import check_choice, check_int, check_range, fail
from lightning_lr.demo import ClassificationSteps
from lightning_lr.mixin import ConfigureOptimizersMixin
from lightning_lr.optimizers import LRScaling
from lightning_lr.plateau import ReduceOnPlateau
from lightning_lr.schedules import Schedule


@functools.lru_cache(maxsize=1)
def load_digit_images() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 handwritten digits as ``(N, 1, 8, 8)`` images in [0, 1], and their labels.

    The digits ship with scikit-learn, so nothing is downloaded.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError("The digits need `scikit-learn`: `pip install lightning-lr[demo]`.") from error
    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return images, torch.as_tensor(digits.target, dtype=torch.long)


class DigitsDataModule(pl.LightningDataModule):
    """scikit-learn's 8x8 digits as one-channel images, split into train, validation and test.

    A small image data set that is always at hand: 1797 images, ten classes, no download. The
    split is fixed by ``seed``: ``test_fraction`` of the images for test, then ``val_fraction`` of
    the rest for validation.

    Args:
        batch_size: samples per training batch.
        val_fraction: share of the non-test images held out for validation.
        test_fraction: share of all images held out for test.
        seed: seed of the split.
    """

    def __init__(
        self, batch_size: int = 64, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
    ) -> None:
        super().__init__()
        check_int("batch_size", batch_size, 1)
        check_range("val_fraction", val_fraction, 0.0, 1.0, low_open=True, high_open=True)
        check_range("test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True)
        self.save_hyperparameters()
        self.batch_size, self.val_fraction, self.test_fraction, self.seed = (
            batch_size,
            val_fraction,
            test_fraction,
            seed,
        )
        self.train_set: Any = None
        self.val_set: Any = None
        self.test_set: Any = None

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        images, labels = load_digit_images()
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))
        n_test = round(len(images) * self.test_fraction)
        n_val = round((len(images) - n_test) * self.val_fraction)
        test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
        self.train_set = TensorDataset(images[train], labels[train])
        self.val_set = TensorDataset(images[val], labels[val])
        self.test_set = TensorDataset(images[test], labels[test])

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.val_set, batch_size=500)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.test_set, batch_size=500)


TorchvisionName = Literal["mnist", "cifar100"]
_TORCHVISION_LAYOUT = {"mnist": "MNIST/raw/", "cifar100": "cifar-100-python/"}
_TORCHVISION_STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar100": ((0.507, 0.487, 0.441), (0.267, 0.256, 0.276)),
}


class TorchvisionDataModule(pl.LightningDataModule):
    """MNIST or CIFAR-100 read by torchvision from a folder the user already has; never downloads.

    The training set is split into train and validation (``val_fraction``, fixed by ``seed``), the
    official test set is the test set. Images are only normalized (no augmentation).

    Args:
        dataset: ``"mnist"`` or ``"cifar100"``.
        data_dir: the ``root`` torchvision would have downloaded into (it holds ``MNIST/raw/`` or
            ``cifar-100-python/``).
        batch_size: samples per training batch.
        val_fraction: share of the training set held out for validation.
        seed: seed of the split.
        num_workers: data loader workers.

    Raises:
        FileNotFoundError: at :meth:`setup`, when ``data_dir`` does not hold the data set.
    """

    def __init__(
        self,
        dataset: TorchvisionName,
        data_dir: str,
        batch_size: int = 128,
        val_fraction: float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        check_choice("dataset", dataset, ("mnist", "cifar100"))
        check_int("batch_size", batch_size, 1)
        check_range("val_fraction", val_fraction, 0.0, 1.0, low_open=True, high_open=True)
        check_int("num_workers", num_workers, 0)
        self.save_hyperparameters()
        self.dataset, self.data_dir, self.batch_size = dataset, data_dir, batch_size
        self.val_fraction, self.seed, self.num_workers = val_fraction, seed, num_workers
        self.train_set: Any = None
        self.val_set: Any = None
        self.test_set: Any = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """Channels, height and width of one image."""
        return (1, 28, 28) if self.dataset == "mnist" else (3, 32, 32)

    @property
    def num_classes(self) -> int:
        return 10 if self.dataset == "mnist" else 100

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        full = self._load(train=True)
        n_val = round(len(full) * self.val_fraction)
        split = torch.Generator().manual_seed(self.seed)
        self.train_set, self.val_set = random_split(full, [len(full) - n_val, n_val], generator=split)
        self.test_set = self._load(train=False)

    def _load(self, *, train: bool) -> Any:
        from torchvision import datasets, transforms

        mean, std = _TORCHVISION_STATS[self.dataset]
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
        cls = datasets.MNIST if self.dataset == "mnist" else datasets.CIFAR100
        try:
            return cls(self.data_dir, train=train, transform=transform, download=False)
        except RuntimeError as error:  # torchvision's "Dataset not found or corrupted"
            raise FileNotFoundError(
                f"`data_dir`={self.data_dir!r} holds no readable {cls.__name__} (torchvision: {error}). "
                f"It must contain `{_TORCHVISION_LAYOUT[self.dataset]}` as torchvision downloads it: run "
                f"`torchvision.datasets.{cls.__name__}({self.data_dir!r}, download=True)` once, "
                "or leave out the data folder to use the offline data set."
            ) from None

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(
            self.train_set, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers
        )

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.val_set, batch_size=500, num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.test_set, batch_size=500, num_workers=self.num_workers)


class ImageClassifier(ConfigureOptimizersMixin, ClassificationSteps):
    """A small VGG-style CNN for images of any size, with every mixin hparam.

    ``features`` holds one block per entry of ``widths`` (``block1``, ``block2``, ...), each
    ``convs_per_block`` 3x3 convolutions (``conv1``, ``conv2``, ...), each followed by a batch norm
    (``norm1``, ...) when ``batch_norm`` and a ReLU; every block but the last ends in 2x2 max
    pooling. Global average pooling and a linear ``head`` follow, so any image size of at least
    ``2 ** (len(widths) - 1)`` pixels works. ``widths=(32, 64, 128)``, ``convs_per_block=2`` is a
    7-layer CNN: six convolutions and the head.

    The mixin arguments are those of :class:`MNIST1DClassifier`.

    Args:
        in_channels: channels of the input images.
        num_classes: classes of the output.
        widths: output channels of each block.
        convs_per_block: convolutions in each block.
        batch_norm: put a batch norm after each convolution.
    """

    def __init__(
        self,
        lr: float = 1e-3,
        optimizer: str | OptimizerCallable = "adamw",
        optimizer_kwargs: Mapping[str, Any] | None = None,
        weight_decay: float | None = None,
        schedule: Schedule | ReduceOnPlateau | LRSchedulerCallable | None = None,
        interval: Literal["step", "epoch"] = "step",
        frequency: int = 1,
        monitor: str = "val_loss",
        lr_multipliers: Mapping[str, float] | None = None,
        no_decay: Sequence[str] | None = None,
        lr_scaling: LRScaling = "none",
        base_batch_size: int | None = None,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: Sequence[int] = (16, 32),
        convs_per_block: int = 1,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("num_classes", num_classes, 2)
        check_int("convs_per_block", convs_per_block, 1)
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
            raise fail(
                "widths", widths, "must be a non-empty list of channel counts", "E.g. `widths=[16, 32]`."
            )
        for width in widths:
            check_int("widths", width, 1)
        self.save_hyperparameters()
        blocks: dict[str, nn.Module] = {}
        channels = in_channels
        for index, width in enumerate(widths, start=1):
            layers: dict[str, nn.Module] = {}
            for conv in range(1, convs_per_block + 1):
                layers[f"conv{conv}"] = nn.Conv2d(channels, width, 3, padding=1, bias=not batch_norm)
                if batch_norm:
                    layers[f"norm{conv}"] = nn.BatchNorm2d(width)
                layers[f"relu{conv}"] = nn.ReLU()
                channels = width
            if index < len(widths):
                layers["pool"] = nn.MaxPool2d(2)
            blocks[f"block{index}"] = nn.Sequential(OrderedDict(layers))
        self.features = nn.Sequential(OrderedDict(blocks))
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.features(x).mean(dim=(2, 3))
        logits: torch.Tensor = self.head(pooled)
        return logits
