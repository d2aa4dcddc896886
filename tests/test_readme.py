"""Every ``lightning-lr`` command of the README runs as written (at a tiny size) and does what the text says.

The commands are read from the README (and ``make demo``'s from the Makefile), so a command added
there without a check here fails :func:`test_every_readme_command_has_its_claim_checked`.
"""

from __future__ import annotations

import io
import logging
import re
import shlex
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.image
import optuna
import pytest
import yaml
from torch.optim.optimizer import register_optimizer_step_post_hook

from lightning_lr.cli import console
from lightning_lr.cli_base import SUBCOMMANDS

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
QUIET_FIT = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
TINY_FIT = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=4",
    "--trainer.limit_val_batches=1",
    "--trainer.limit_test_batches=1",
    *QUIET_FIT,
]
# enough steps for a diagnosis (its window is 50 steps), little validation
WRONG_LR = ["--trainer.max_epochs=6", "--trainer.limit_val_batches=2", "--test_after_fit=false", *QUIET_FIT]
TINY_SEARCH = [
    "--n_trials",
    "2",
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=10",  # one-cycle needs a few steps in each phase
    "--trainer.limit_val_batches=1",
]


def readme_commands() -> list[str]:
    """The ``lightning-lr`` commands of the README's bash blocks and inline code, and ``make demo``'s."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line == "make demo":
                recipe = re.search(r"^demo:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), flags=re.M)
                assert recipe is not None
                line = "lightning-lr" + recipe.group(1).split("lightning-lr", 1)[1]
            if line.startswith("lightning-lr "):
                commands.append(" ".join(line.split()))
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    commands += [span for span in re.findall(r"`(lightning-lr [^`]*)`", prose) if "--" in span]
    for config in sorted((ROOT / "configs").glob("*.yaml")):  # the commands in the configs' comments
        for line in config.read_text().splitlines():
            found = re.match(r"#\s+(lightning-lr [^(]*?)\s*(\(.*)?$", line)
            if found:
                commands.append(" ".join(found.group(1).split()))
    return list(dict.fromkeys(commands))


@dataclass
class Run:
    """What a user sees of one command: the exit code, everything printed or logged, the files."""

    folder: Path
    code: int
    out: str
    err: str
    steps: int
    warned: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.out + self.err

    def files(self) -> set[str]:
        skip = {"configs", "__pycache__", "my_project.py", "my_config.yaml"}
        return {path.name for path in self.folder.iterdir() if path.name not in skip}


@pytest.fixture
def run_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[[str, list[str]], Run]]:
    """Runs a README command in an empty folder whose ``configs`` is the repository's."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    lightning_log = io.StringIO()
    handler = logging.StreamHandler(lightning_log)
    logger = logging.getLogger("lightning.pytorch")
    logger.addHandler(handler)
    steps: list[int] = []
    hook = register_optimizer_step_post_hook(lambda *args: steps.append(1))

    def run(command: str, extra: list[str]) -> Run:
        args = shlex.split(command)
        assert args[0] == "lightning-lr"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                console([*args[1:], *extra])
                code = 0
            except SystemExit as exit_:
                code = int(exit_.code or 0)
        printed = capsys.readouterr()
        return Run(
            tmp_path,
            code,
            printed.out,
            printed.err + lightning_log.getvalue(),
            len(steps),
            [str(warning.message) for warning in caught],
        )

    yield run
    hook.remove()
    logger.removeHandler(handler)


def _quiet(run: Run) -> None:
    assert "Tip:" not in run.text and "litlogger" not in run.text, run.text
    assert not any("LeafSpec" in message for message in run.warned), run.warned
    assert not any("LRDiagnostics [" in message for message in run.warned), "advice came as a warning"


def check_demo(run: Run) -> None:
    """The README's demo output: the finder's pick, its change of the LR, the diagnostics, the paths."""
    assert run.code == 0, run.text
    shown = re.search(r"```\n(LR finder: .*?)```", README, flags=re.S)
    assert shown is not None
    for line in shown.group(1).splitlines():
        if line.startswith("  "):  # a diagnosis of the 30-epoch run; which ones depends on its length
            continue
        # the numbers, and whether there was a diagnosis to sum up, depend on the run's length
        expected = line if "version_0" in line else re.split(r"\d|summary", line)[0].strip()
        assert expected in run.text, f"README shows {line!r}; the demo printed:\n{run.text}"
    assert re.search(r"LRFinder \(epoch 0\): base LR 0\.03 -> 0\.0\d+ \(`peak` rule", run.text), run.text
    log_dir = run.folder / "runs" / "mnist1d" / "version_0"
    assert matplotlib.image.imread(log_dir / "lr_finder.png").ndim == 3  # "in the log directory"
    assert matplotlib.image.imread(log_dir / "lr_schedule.png").ndim == 3
    _quiet(run)


def _diagnosed(kind: str, advice: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        assert run.code == 0, run.text
        assert "the config's LRFinder is left out, the run trains at it" in run.out.splitlines()[0], run.out
        assert "LR finder:" not in run.text, "the range test ran and replaced the LR given"
        found = re.findall(r"LRDiagnostics \[(\w+)\] at step (\d+): (.*)", run.text)
        assert any(name == kind and advice in text for name, _, text in found), run.text
        assert min(int(step) for name, step, _ in found if name == kind) < 5 * 36  # within five epochs
        _quiet(run)

    return check


def check_quickstart_fit(run: Run) -> None:
    assert run.code == 0, run.text
    assert run.steps == 4
    assert "lightning-lr: logs: " in run.out and "lightning-lr: LR schedule plot: " in run.out


def _plot_only(steps: int | None, *, finder_note: bool) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        assert run.code == 0, run.text
        assert run.steps == 0, "plot-schedule trained"
        assert run.files() == {"schedule.png"}, f"wrote {run.files()}"
        assert f"lightning-lr: {steps or ''}" in run.out and " optimizer steps, peak LR " in run.out
        assert f"plot: {(run.folder / 'schedule.png').resolve()}" in run.out, run.out
        assert matplotlib.image.imread(run.folder / "schedule.png").ndim == 3
        assert ("LRFinder replaces the peak LR when training starts" in run.out) is finder_note
        for quiet in ("LR finder:", "LRDiagnostics", "lr_finder"):
            assert quiet not in run.text, f"{quiet!r} in:\n{run.text}"
        _quiet(run)

    return check


def check_lr_plot_and_test(run: Run) -> None:
    assert run.code == 0, run.text
    log_dir = run.folder / "runs" / "mnist1d" / "version_0"
    assert matplotlib.image.imread(log_dir / "lr.png").ndim == 3
    assert f"LR schedule plot: {Path('runs/mnist1d/version_0/lr.png')}" in run.out
    assert re.search(r"lightning-lr: test_acc: 0\.\d{4}", run.out), run.out


def check_find_lr(run: Run) -> None:
    assert run.code == 0, run.text
    assert 0 < run.steps <= 200  # the sweeps', in a Trainer of their own; the weights are put back
    for rule in ("steepest", "valley", "minimum", "peak (default)"):
        assert run.out.count(f"lightning-lr: {rule}:") == 1, run.out
    assert run.files() == {"lr_finder.png"}
    _quiet(run)


def check_overview(run: Run) -> None:
    assert run.code == 0
    for name, purpose in SUBCOMMANDS.items():
        assert re.search(rf"^  {re.escape(name)} +{re.escape(purpose)}$", run.out, flags=re.M), run.out


def check_search_help(run: Run) -> None:
    assert run.code == 0
    options = re.search(r"Options: (`--n_trials`.*?); a `--section", README, flags=re.S)
    assert options is not None
    for option in re.findall(r"`(--\w+)", options.group(1)):
        assert option in run.out, f"{option} missing from:\n{run.out}"
    flat = " ".join(run.out.split())
    assert "(default: 20)" in flat and "(default: lightning-lr-search)" in flat
    assert "(default: None)" not in flat
    assert "``" not in run.out and ":func:" not in run.out


def check_search(run: Run) -> None:
    assert run.code == 0, run.text
    assert "the config's LRFinder is left out of the trials" in run.out
    study = optuna.load_study(
        study_name="lightning-lr-search",
        storage=f"sqlite:///{run.folder / 'lightning_lr_search' / 'lightning-lr-search.db'}",
    )
    assert len(study.trials) == 2
    for trial in study.trials:
        trial_dir = run.folder / "lightning_lr_search" / "lightning-lr-search" / f"trial_{trial.number}"
        (log_dir,) = trial_dir.glob("*/version_0")
        # the trial trained at the LR the search gave it: no range test replaced it
        assert yaml.safe_load((log_dir / "hparams.yaml").read_text())["lr"] == trial.params["lr"]
        assert "lr_finder" not in (log_dir / "metrics.csv").read_text()
    assert f"best lr {study.best_trial.params['lr']:.4g}" in run.out
    assert "| trial | state | lr | warmup | schedule | val_loss |" in run.out
    assert matplotlib.image.imread(run.folder / "lightning_lr_search" / "lightning-lr-search.png").ndim == 3


def check_error(run: Run) -> None:
    assert run.code == 2
    first = run.err.splitlines()[0]
    assert first.startswith(
        "lightning-lr: error: `model.init_args.learning_rate` is not an argument of MNIST1DClassifier. "
        "Did you mean `model.init_args.lr`?"
    ), run.err
    assert "usage:" not in run.text and "Traceback" not in run.text
    assert run.steps == 0


FIND_LR = "lightning-lr find-lr --config configs/mnist1d.yaml -o lr_finder.png"
CLAIMS: dict[str, tuple[list[str], Callable[[Run], None]]] = {
    "lightning-lr fit --config configs/mnist1d.yaml": (TINY_FIT, check_demo),
    "lightning-lr fit --config configs/mnist1d.yaml --model.init_args.lr=1e-5": (
        WRONG_LR,
        _diagnosed("too_low", "Raise the LR 3 to 10 times"),
    ),
    "lightning-lr fit --config configs/mnist1d.yaml --model.init_args.lr=1e-4": (
        WRONG_LR,
        _diagnosed("too_low", "Raise the LR 3 to 10 times"),
    ),
    "lightning-lr fit --config configs/mnist1d.yaml --model.init_args.lr=1.0": (
        WRONG_LR,
        _diagnosed("too_high", "Restart from the initial weights at a lower LR"),
    ),
    "lightning-lr fit --config my_config.yaml": (TINY_FIT, check_quickstart_fit),
    "lightning-lr plot-schedule --config my_config.yaml -o schedule.png": (
        [],
        _plot_only(None, finder_note=False),
    ),
    "lightning-lr search --config configs/mnist1d.yaml --n_trials 20 --lr_range 1e-4 1 --warmup_range 0 0.2 "
    "--schedules cosine,onecycle --trainer.max_epochs=10": (TINY_SEARCH, check_search),
    "lightning-lr fit --config configs/mnist1d.yaml --lr_plot lr.png --test_after_fit true": (
        TINY_FIT,
        check_lr_plot_and_test,
    ),
    "lightning-lr plot-schedule --config configs/mnist1d.yaml -o schedule.png --log_scale "
    "--trainer.max_epochs=10": ([], _plot_only(360, finder_note=True)),
    "lightning-lr plot-schedule --config configs/mnist1d.yaml -o schedule.png": (
        [],
        _plot_only(30 * 36, finder_note=True),
    ),
    "lightning-lr find-lr --config configs/mnist1d.yaml -o lr_finder.png --rule peak": ([], check_find_lr),
    FIND_LR: ([], check_find_lr),
    "lightning-lr --help": ([], check_overview),
    "lightning-lr search --help": ([], check_search_help),
    "lightning-lr fit --config configs/mnist1d.yaml --model.init_args.learning_rate=0.1": ([], check_error),
}


def test_every_readme_command_has_its_claim_checked() -> None:
    assert set(readme_commands()) == set(CLAIMS)


def _write_quickstart(folder: Path) -> None:
    """The README's quickstart module and its YAML, as a user would copy them."""
    quickstart = README.split("## Quickstart", 1)[1]
    code = re.search(r"```python\n(.*?)```", quickstart, flags=re.S)
    config = re.search(r"```yaml\n(.*?)```", quickstart, flags=re.S)
    assert code is not None and config is not None
    (folder / "my_project.py").write_text(code.group(1))
    (folder / "my_config.yaml").write_text(config.group(1))


@pytest.mark.parametrize("command", list(CLAIMS))
def test_readme_command_does_what_the_readme_says(
    command: str,
    run_command: Callable[[str, list[str]], Run],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if "my_config.yaml" in command:
        _write_quickstart(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
    extra, check = CLAIMS[command]
    check(run_command(command, extra))


def _init_args(config: dict[str, Any]) -> dict[str, Any]:
    return dict(config["model"]["init_args"])


def _callbacks(config: dict[str, Any]) -> list[str]:
    return [callback["class_path"].rsplit(".", 1)[-1] for callback in config["trainer"].get("callbacks", [])]


def _schedule(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    schedule = _init_args(config)["schedule"]
    return schedule["class_path"], dict(schedule.get("init_args") or {})


CONFIG_CLAIMS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "mnist1d.yaml": lambda c: (
        _init_args(c)["optimizer"] == "adamw"
        and _schedule(c)[0].endswith("CosineDecay")
        and {"LRWarmup", "LRLogger", "LRDiagnostics"} <= set(_callbacks(c))
    ),
    "mnist1d_onecycle.yaml": lambda c: _schedule(c)[0].endswith("OneCycle"),
    "mnist1d_wsd.yaml": lambda c: (
        _schedule(c)[0].endswith("WarmupStableDecay") and _schedule(c)[1]["decay_shape"] == "1-sqrt"
    ),
    "mnist1d_plateau.yaml": lambda c: (
        _schedule(c)[0].endswith("ReduceOnPlateau")
        and _init_args(c)["monitor"] == "val_loss"
        and _init_args(c)["interval"] == "epoch"
    ),
    "mnist1d_layerwise_restarts.yaml": lambda c: (
        _schedule(c)[0].endswith("CosineRestarts")
        and "epochs" in str(_schedule(c)[1]["cycle_steps"])
        and bool(_init_args(c)["lr_multipliers"])
        and "no_decay" not in _init_args(c)
    ),  # the default: biases and norm layers
    "mnist1d_torch_sgd_steplr.yaml": lambda c: (
        _init_args(c)["optimizer"]["class_path"] == "torch.optim.SGD"
        and _schedule(c)[0] == "torch.optim.lr_scheduler.StepLR"
        and _init_args(c)["interval"] == "epoch"
    ),
}


def test_the_configs_table_lists_every_config_and_each_is_what_the_table_says() -> None:
    table = README.split("Configs in `configs/`", 1)[1].split("\n\n", 2)[1]
    rows = dict(re.findall(r"^\| `([\w.]+\.yaml)` \| (.*) \|$", table, flags=re.M))
    assert set(rows) == {path.name for path in (ROOT / "configs").glob("*.yaml")} == set(CONFIG_CLAIMS)
    for name, claim in CONFIG_CLAIMS.items():
        assert claim(yaml.safe_load((ROOT / "configs" / name).read_text())), f"{name}: {rows[name]}"
