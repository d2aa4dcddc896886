"""Every example runs offline at smoke size."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import matplotlib.image
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


def _assert_figure(path: Path) -> None:
    """A PNG that matplotlib reads back, of a real figure's size, with something drawn on it."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    image = matplotlib.image.imread(path)
    assert image.shape[0] >= 300 and image.shape[1] >= 500, image.shape
    assert image.std() > 0.05  # not a blank canvas


def _table_rows(printed: str, first_cells: list[str]) -> list[str]:
    """The printed lines that start with one of ``first_cells``; each of them starts one at least."""
    rows = [line for line in printed.splitlines() if line.split() and line.split()[0] in first_cells]
    assert {row.split()[0] for row in rows} == set(first_cells), printed
    return rows


def test_quickstart_finds_an_lr_trains_at_it_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _load("quickstart").main(
        ["--max-epochs", "1", "--limit-train-batches", "10", "--out", str(tmp_path)]
    )
    printed = capsys.readouterr().out
    assert result["suggestion"] is not None and 1e-4 < result["suggestion"] < 1.0
    assert 0.2 < result["test_acc"] <= 1.0  # chance is 0.1
    assert isinstance(result["diagnoses"], list)
    assert f"{result['suggestion']:.3g}" in printed and f"{result['test_acc']:.4f}" in printed
    _assert_figure(tmp_path / "lr_finder.png")
    _assert_figure(tmp_path / "training.png")


def test_four_learning_rates_trains_one_run_per_lr_from_the_same_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _load("four_learning_rates")
    results = module.main(["--epochs", "2", "--limit-train-batches", "3", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert list(results) == [1e-1, 1e-3, 3e-4, 6.25e-5]
    for result in results.values():
        steps, losses = result["train_loss"]
        assert steps == list(range(6)) and all(loss > 0 for loss in losses)
        epochs, accuracies = result["test_acc"]
        assert epochs == [0, 1] and all(0.0 <= accuracy <= 1.0 for accuracy in accuracies)
    first_losses = {result["train_loss"][1][0] for result in results.values()}
    assert len(first_losses) == 1  # same weights, same first batch: the LR acts only from step 1 on
    assert len(_table_rows(printed, ["0.1", "0.001", "0.0003", "6.25e-05"])) == 4
    _assert_figure(tmp_path / "four_learning_rates.png")


def test_four_learning_rates_says_what_a_data_folder_without_cifar100_lacks(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"holds no readable CIFAR100.*cifar-100-python/"):
        _load("four_learning_rates").main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "out")])


def test_compare_schedulers_logs_each_schedulers_lr_and_accuracy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _load("compare_schedulers")
    results = module.main(["--max-epochs", "2", "--limit-train-batches", "3", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    names = ["step", "exponential", "cosine", "cyclic", "one-cycle", "plateau"]
    assert list(results) == names
    peak = module.PEAK_LR
    for result in results.values():
        steps, lrs = result["lr"]
        assert steps == list(range(6)) and all(0 < lr <= peak * (1 + 1e-9) for lr in lrs)
        assert result["val_acc"][0] == [0, 1] and 0.0 <= result["test_acc"] <= 1.0
    lrs = {name: result["lr"][1] for name, result in results.items()}
    assert lrs["exponential"] == pytest.approx([peak] * 3 + [peak * 0.85] * 3)  # once per epoch
    assert lrs["one-cycle"][0] == pytest.approx(peak / 25)  # 1cycle starts at peak / div_factor
    assert lrs["cosine"][0] == pytest.approx(peak) and lrs["cosine"][-1] < peak / 2
    assert lrs["plateau"] == pytest.approx([peak] * 6)  # two epochs: no plateau to act on yet
    assert len(_table_rows(printed, names)) == len(names)
    _assert_figure(tmp_path / "lr_curves.png")
    _assert_figure(tmp_path / "val_accuracy.png")


def test_compare_schedulers_says_what_a_data_folder_without_mnist_lacks(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"holds no readable MNIST.*MNIST/raw/"):
        _load("compare_schedulers").main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "out")])


def test_layerwise_lr_builds_one_group_per_multiplier_and_decay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _load("layerwise_lr").main(
        ["--max-epochs", "1", "--limit-train-batches", "4", "--out", str(tmp_path)]
    )
    printed = capsys.readouterr().out
    groups = {group["name"]: group for group in result["groups"]}
    expected = {  # name: (peak LR, weight decay, tensors)
        "features.block1": (3e-4, 0.05, 1),  # conv1.weight (no conv bias under batch norm)
        "features.block1/no_decay": (3e-4, 0.0, 2),  # norm1.weight, norm1.bias
        "features": (9e-4, 0.05, 2),
        "features/no_decay": (9e-4, 0.0, 4),
        "default": (3e-3, 0.05, 1),  # head.weight
        "default/no_decay": (3e-3, 0.0, 1),  # head.bias
    }
    assert set(groups) == set(expected)
    for name, (lr, weight_decay, tensors) in expected.items():
        assert groups[name]["lr"] == pytest.approx(lr), name
        assert (groups[name]["weight_decay"], groups[name]["tensors"]) == (weight_decay, tensors), name
    head = [lr for _, lr in result["logged"]["default"]]
    assert len(head) == 4
    for name, (lr, _, _) in expected.items():  # every logged step keeps the groups' ratios
        logged = [value for _, value in result["logged"][name]]
        assert logged == pytest.approx([value * lr / 3e-3 for value in head]), name
    assert 0.0 <= result["val_acc"] <= 1.0
    assert len(_table_rows(printed, list(expected))) == 2 * len(expected)  # the groups, then the logged LRs
    _assert_figure(tmp_path / "group_lrs.png")


@pytest.mark.slow
def test_lr_search_runs_two_workers_on_one_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    n_trials = 2
    argv = [
        "--n-trials",
        str(n_trials),
        "--max-epochs",
        "1",
        "--limit-train-batches",
        "2",
        "--out",
        str(tmp_path),
    ]
    found = _load("lr_search").main(argv)
    printed = capsys.readouterr().out
    result, ran_by = found["result"], found["ran_by"]
    assert sorted(row.number for row in result.trials) == list(range(2 * n_trials))
    assert sorted(ran_by.values()) == [0] * n_trials + [1] * n_trials  # each worker ran its share
    assert {row.state for row in result.trials} <= {"COMPLETE", "PRUNED"}
    assert result.best_lr is not None and 1e-4 <= result.best_lr <= 1.0
    assert (
        f"best LR: {result.best_lr:.3g}" in printed
        and printed.count("| COMPLETE") + printed.count("| PRUNED") == 2 * n_trials
    )
    assert (tmp_path / "lr_search.db").is_file()
    _assert_figure(tmp_path / "lr_search.png")
