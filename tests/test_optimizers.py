"""Optimizer registry, name patterns, param groups, weight decay defaults and LR scaling: no Trainer."""

from __future__ import annotations

import functools
import importlib
import math
import sys

import pytest
import torch
from torch import nn

from lightning_lr.optimizers import (
    OPTIMIZERS,
    auto_no_decay,
    build_optimizer,
    effective_weight_decay,
    has_mode_switch,
    lr_scale,
    matches,
    optimizer_class,
    param_groups,
)

SPEC_NAMES = (
    "sgd",
    "adam",
    "adamw",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adamax",
    "nadam",
    "radam",
    "schedulefree_adamw",
    "schedulefree_sgd",
    "prodigy",
)


class Net(nn.Module):
    """backbone.0 (Linear 4->8), backbone.1 (LayerNorm 8), head (Linear 8->1): like conftest's model."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Tanh())
        self.head = nn.Linear(8, 1)


ALL = (
    "backbone.0.weight",
    "backbone.0.bias",
    "backbone.1.weight",
    "backbone.1.bias",
    "head.weight",
    "head.bias",
)


def names_of(module: nn.Module, params: list[torch.Tensor]) -> list[str]:
    ids = {id(p): name for name, p in module.named_parameters()}
    return [ids[id(p)] for p in params]


def group_table(module: nn.Module, groups: list[dict]) -> dict[str, list[str]]:
    return {group["name"]: names_of(module, group["params"]) for group in groups}


# --- registry ---------------------------------------------------------------------------------


def test_registry_holds_exactly_the_spec_names() -> None:
    assert tuple(OPTIMIZERS) == SPEC_NAMES


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_name_resolves_to_the_class_at_its_import_path(name: str) -> None:
    module_name, _, attribute = OPTIMIZERS[name].rpartition(".")
    expected = getattr(importlib.import_module(module_name), attribute)
    assert optimizer_class(name) is expected
    assert issubclass(expected, torch.optim.Optimizer)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("AdamW", torch.optim.AdamW),
        ("RMSProp", torch.optim.RMSprop),
        ("torch.optim.SGD", torch.optim.SGD),
        ("torch.optim.lbfgs.LBFGS", torch.optim.LBFGS),
        (torch.optim.NAdam, torch.optim.NAdam),
    ],
)
def test_optimizer_class_takes_any_case_import_paths_and_classes(spec: object, expected: type) -> None:
    assert optimizer_class(spec) is expected  # type: ignore[arg-type]


def test_dashes_and_underscores_name_the_same_optimizer() -> None:
    assert optimizer_class("schedulefree-adamw") is optimizer_class("schedulefree_adamw")


def test_unknown_name_lists_every_known_name() -> None:
    with pytest.raises(ValueError, match=r"`optimizer` is not a known optimizer, got 'adamz'") as error:
        optimizer_class("adamz")
    for name in SPEC_NAMES:
        assert name in str(error.value)


@pytest.mark.parametrize(
    ("spec", "error", "pattern"),
    [
        ("torch.optim.NoSuchOptimizer", ValueError, r"`optimizer` is not a torch.optim.Optimizer class"),
        ("torch.nn.Linear", ValueError, r"`optimizer` is not a torch.optim.Optimizer class"),
        ("no_such_package.Optimizer", ValueError, r"`optimizer` cannot be imported .*'no_such_package"),
        (nn.Linear, TypeError, r"`optimizer` must be a torch.optim.Optimizer subclass"),
        (3, TypeError, r"`optimizer` must be an optimizer name, import path or class, got 3"),
    ],
)
def test_optimizer_class_refuses_what_is_not_an_optimizer(spec: object, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        optimizer_class(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "package"), [("prodigy", "prodigyopt"), ("schedulefree_sgd", "schedulefree")]
)
def test_a_missing_optional_package_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, name: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ImportError, match=rf"`optimizer`='{name}' needs the package `{package}`") as error:
        optimizer_class(name)
    assert f"pip install {package}" in str(error.value)


def test_mode_switch_is_detected_on_schedule_free_optimizers_only() -> None:
    params = [nn.Parameter(torch.zeros(2))]
    assert has_mode_switch(optimizer_class("schedulefree_adamw")(params))
    assert not has_mode_switch(torch.optim.AdamW(params))


# --- patterns ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pattern", "expected"),
    [
        ("backbone.0.weight", "backbone", True),
        ("backbone.0.weight", "backbone.0", True),
        ("backbone.0.weight", "0.weight", True),
        ("backbone.0.weight", "weight", True),
        ("head.bias", "bias", True),
        ("head.bias", "head.bias", True),
        ("backbone.0.weight", "back", False),
        ("backbone.0.weight", "bone", False),
        ("backbone.10.weight", "1", False),
        ("backbone.0.weight", "backbone.weight", False),
        ("my_backbone.weight", "backbone", False),
        ("backbone.0.weight", "*.weight", True),
        ("backbone.0.weight", "backbone.?.weight", True),
        ("backbone.10.weight", "backbone.?.weight", False),
        ("backbone.1.bias", "backbone.[01].*", True),
        ("backbone.2.bias", "backbone.[01].*", False),
        ("head.bias", "back*", False),
        ("Head.bias", "head", False),
    ],
)
def test_matches_whole_dotted_segments_or_a_glob(name: str, pattern: str, expected: bool) -> None:
    assert matches(name, pattern) is expected


def test_auto_no_decay_picks_one_dimensional_and_norm_layer_parameters() -> None:
    model = nn.ModuleDict(
        {
            "embed": nn.Embedding(5, 3),
            "proj": nn.Linear(3, 4),
            "norm": nn.LayerNorm([2, 4]),  # a 2-D weight, exempt because it belongs to a norm layer
            "block": nn.Sequential(nn.Conv1d(2, 2, 1), nn.GroupNorm(1, 2)),
        }
    )
    assert model["norm"].weight.ndim == 2
    assert auto_no_decay(model) == {
        "proj.bias",
        "norm.weight",
        "norm.bias",
        "block.0.bias",
        "block.1.weight",
        "block.1.bias",
    }


# --- param groups -----------------------------------------------------------------------------


def test_without_decay_or_multipliers_one_group_holds_every_trainable_parameter() -> None:
    model = Net()
    groups, multipliers = param_groups(model)
    assert group_table(model, groups) == {"default": list(ALL)}
    assert multipliers == [1.0]
    assert "weight_decay" not in groups[0]


def test_weight_decay_splits_off_biases_and_norm_parameters() -> None:
    model = Net()
    groups, multipliers = param_groups(model, weight_decay=0.1)
    assert group_table(model, groups) == {
        "default": ["backbone.0.weight", "head.weight"],
        "default/no_decay": ["backbone.0.bias", "backbone.1.weight", "backbone.1.bias", "head.bias"],
    }
    assert [group.get("weight_decay") for group in groups] == [None, 0.0]
    assert multipliers == [1.0, 1.0]


def test_empty_no_decay_decays_everything() -> None:
    model = Net()
    groups, _ = param_groups(model, no_decay=[], weight_decay=0.1)
    assert group_table(model, groups) == {"default": list(ALL)}


def test_no_decay_patterns_replace_the_automatic_choice() -> None:
    model = Net()
    groups, _ = param_groups(model, no_decay=["head", "backbone.1"], weight_decay=0.1)
    assert group_table(model, groups) == {
        "default": ["backbone.0.weight", "backbone.0.bias"],
        "default/no_decay": ["backbone.1.weight", "backbone.1.bias", "head.weight", "head.bias"],
    }


def test_lr_multipliers_group_by_pattern_and_split_decay_within_each() -> None:
    model = Net()
    groups, multipliers = param_groups(model, lr_multipliers={"backbone": 0.1}, weight_decay=0.1)
    assert group_table(model, groups) == {
        "backbone": ["backbone.0.weight"],
        "backbone/no_decay": ["backbone.0.bias", "backbone.1.weight", "backbone.1.bias"],
        "default": ["head.weight"],
        "default/no_decay": ["head.bias"],
    }
    assert multipliers == [0.1, 0.1, 1.0, 1.0]


def test_the_first_matching_multiplier_pattern_wins() -> None:
    model = Net()
    groups, multipliers = param_groups(
        model, lr_multipliers={"backbone.0": 0.5, "backbone": 0.1, "*.bias": 2.0}
    )
    table = group_table(model, groups)
    assert table == {
        "backbone.0": ["backbone.0.weight", "backbone.0.bias"],
        "backbone": ["backbone.1.weight", "backbone.1.bias"],
        "default": ["head.weight"],
        "*.bias": ["head.bias"],
    }
    assert dict(zip(table, multipliers)) == {
        "backbone.0": 0.5,
        "backbone": 0.1,
        "default": 1.0,
        "*.bias": 2.0,
    }


def test_frozen_parameters_are_left_out() -> None:
    model = Net()
    model.backbone.requires_grad_(False)
    groups, _ = param_groups(model, weight_decay=0.1)
    assert group_table(model, groups) == {"default": ["head.weight"], "default/no_decay": ["head.bias"]}


def test_a_module_without_trainable_parameters_is_refused() -> None:
    model = Net().requires_grad_(False)
    with pytest.raises(ValueError, match="Net has no trainable parameters"):
        param_groups(model)


@pytest.mark.parametrize(
    ("options", "argument", "value"),
    [
        ({"lr_multipliers": {"backbon": 0.1}}, "lr_multipliers", "'backbon'"),
        ({"lr_multipliers": {"*.weights": 0.1}}, "lr_multipliers", "'*.weights'"),
        ({"no_decay": ["bais"], "weight_decay": 0.1}, "no_decay", "'bais'"),
    ],
)
def test_a_pattern_that_matches_nothing_lists_the_parameter_names(
    options: dict, argument: str, value: str
) -> None:
    with pytest.raises(
        ValueError, match=rf"`{argument}` has a pattern that matches no trainable parameter"
    ) as error:
        param_groups(Net(), **options)
    message = str(error.value)
    assert f"got {value}" in message
    for name in ALL:
        assert name in message


def test_param_groups_refuses_a_negative_multiplier_and_a_string_no_decay() -> None:
    with pytest.raises(ValueError, match=r"`lr_multipliers\['head'\]` must be >= 0, got -1"):
        param_groups(Net(), lr_multipliers={"head": -1})
    with pytest.raises(TypeError, match=r"`no_decay` must be a list of patterns, got the string 'bias'"):
        param_groups(Net(), no_decay="bias")  # type: ignore[arg-type]


# --- weight decay defaults --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop", "schedulefree_adamw", "prodigy"])
def test_effective_weight_decay_defaults_to_what_the_optimizer_applies(name: str) -> None:
    built = optimizer_class(name)([nn.Parameter(torch.zeros(1))])
    assert effective_weight_decay(name, None) == built.defaults["weight_decay"]


def test_effective_weight_decay_prefers_the_given_value_and_assumes_decay_for_callables() -> None:
    assert effective_weight_decay("adamw", 0.0) == 0.0
    assert effective_weight_decay(torch.optim.SGD, 0.3) == 0.3
    assert effective_weight_decay(functools.partial(torch.optim.SGD, lr=0.1), None) > 0


# --- build_optimizer --------------------------------------------------------------------------


def test_build_optimizer_gives_each_group_peak_lr_times_scale_times_multiplier() -> None:
    model = Net()
    groups, multipliers = param_groups(model, lr_multipliers={"backbone": 0.1}, weight_decay=0.2)
    optimizer = build_optimizer(
        "sgd", groups, multipliers, lr=0.5, weight_decay=0.2, kwargs={"momentum": 0.9}, lr_scale=2.0
    )
    assert isinstance(optimizer, torch.optim.SGD)
    assert [g["name"] for g in optimizer.param_groups] == [
        "backbone",
        "backbone/no_decay",
        "default",
        "default/no_decay",
    ]
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.1, 0.1, 1.0, 1.0])
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.2, 0.0, 0.2, 0.0]
    assert all(g["momentum"] == 0.9 for g in optimizer.param_groups)
    assert optimizer.defaults["lr"] == pytest.approx(1.0)


def test_build_optimizer_keeps_the_optimizers_own_weight_decay_when_none_is_given() -> None:
    model = Net()
    groups, multipliers = param_groups(model, weight_decay=effective_weight_decay("adamw", None))
    optimizer = build_optimizer("adamw", groups, multipliers, lr=1e-3)
    default = torch.optim.AdamW([nn.Parameter(torch.zeros(1))]).defaults["weight_decay"]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [default, 0.0]


def test_build_optimizer_calls_a_callable_with_the_groups_and_scales_its_lr() -> None:
    model = Net()
    groups, multipliers = param_groups(model, lr_multipliers={"head": 3.0})
    optimizer = build_optimizer(
        functools.partial(torch.optim.SGD, lr=0.1, momentum=0.5), groups, multipliers, lr=None, lr_scale=0.5
    )
    assert [g["name"] for g in optimizer.param_groups] == ["default", "head"]
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.05, 0.15])
    assert optimizer.param_groups[0]["momentum"] == 0.5


@pytest.mark.parametrize(
    ("spec", "options", "error", "pattern"),
    [
        (
            "sgd",
            {"kwargs": {"momentun": 0.9}},
            ValueError,
            r"`optimizer_kwargs` has keys \['momentun'\].*momentum",
        ),
        ("sgd", {"kwargs": {"lr": 0.1}}, ValueError, r"`optimizer_kwargs\['lr'\]` is set in the wrong place"),
        ("adamw", {"kwargs": {"weight_decay": 0.1}}, ValueError, r"`optimizer_kwargs\['weight_decay'\]`"),
        ("sgd", {"lr": None}, ValueError, r"`lr` is missing"),
        ("sgd", {"lr": -0.1}, ValueError, r"`lr` must be > 0, got -0.1"),
        ("sgd", {"weight_decay": -1.0}, ValueError, r"`weight_decay` must be >= 0, got -1.0"),
        (
            lambda groups: "not an optimizer",
            {},
            TypeError,
            r"`optimizer` callable must return a torch Optimizer",
        ),
        (42, {}, TypeError, r"`optimizer` must be a name, a class or a callable, got 42"),
    ],
)
def test_build_optimizer_refuses_bad_arguments(
    spec: object, options: dict, error: type, pattern: str
) -> None:
    groups, multipliers = param_groups(Net())
    arguments = {"lr": 0.1, **options}
    with pytest.raises(error, match=pattern):
        build_optimizer(spec, groups, multipliers, **arguments)  # type: ignore[arg-type]


def test_optimizers_with_kwargs_catch_all_accept_any_key() -> None:
    class Flexible(torch.optim.SGD):
        def __init__(self, params, lr: float = 0.1, **extra: object) -> None:  # type: ignore[no-untyped-def]
            super().__init__(params, lr=lr)
            self.extra = extra

    groups, multipliers = param_groups(Net())
    optimizer = build_optimizer(Flexible, groups, multipliers, lr=0.1, kwargs={"anything": 1})
    assert optimizer.extra == {"anything": 1}  # type: ignore[attr-defined]


# --- LR scaling -------------------------------------------------------------------------------


@pytest.mark.parametrize(("batch", "base"), [(256, 128), (64, 256), (96, 32), (128, 128)])
def test_lr_scale_linear_and_sqrt(batch: int, base: int) -> None:
    assert lr_scale("linear", batch, base) == pytest.approx(batch / base)
    assert lr_scale("sqrt", batch, base) == pytest.approx(math.sqrt(batch / base))
    assert lr_scale("none", batch, base) == 1.0


@pytest.mark.parametrize(
    ("arguments", "pattern"),
    [
        (("cubic", 64, 32), r"`lr_scaling` must be one of 'none', 'linear', 'sqrt', got 'cubic'"),
        (("linear", 0, 32), r"`batch_size` must be > 0, got 0"),
        (("sqrt", 64, -32), r"`base_batch_size` must be > 0, got -32"),
    ],
)
def test_lr_scale_refuses_bad_arguments(arguments: tuple, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        lr_scale(*arguments)
