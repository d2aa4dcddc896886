"""Optimizers by name, param groups (layer-wise LR multipliers, no-decay) and LR scaling."""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from torch import nn
from torch.optim import Optimizer

from lightning_lr._validate import check_choice, check_non_negative, check_positive, fail

OPTIMIZERS: dict[str, str] = {
    "sgd": "torch.optim.SGD",
    "adam": "torch.optim.Adam",
    "adamw": "torch.optim.AdamW",
    "adagrad": "torch.optim.Adagrad",
    "rmsprop": "torch.optim.RMSprop",
    "adadelta": "torch.optim.Adadelta",
    "adamax": "torch.optim.Adamax",
    "nadam": "torch.optim.NAdam",
    "radam": "torch.optim.RAdam",
    "schedulefree_adamw": "schedulefree.AdamWScheduleFree",
    "schedulefree_sgd": "schedulefree.SGDScheduleFree",
    "prodigy": "prodigyopt.Prodigy",
}
"""Optimizer names accepted by the mixin's ``optimizer`` hparam, and what they import."""

_PACKAGES = {"schedulefree": "schedulefree", "prodigyopt": "prodigyopt"}

NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.RMSNorm,
)

LRScaling = Literal["none", "linear", "sqrt"]


def optimizer_class(spec: str | type[Optimizer], *, name: str = "optimizer") -> type[Optimizer]:
    """The optimizer class for a name (``"adamw"``), an import path or a class.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
        ImportError: the optimizer lives in an optional package that is not installed.
    """
    if isinstance(spec, type):
        if not issubclass(spec, Optimizer):
            raise TypeError(f"`{name}` must be a torch.optim.Optimizer subclass, got {spec!r}.")
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"`{name}` must be an optimizer name, import path or class, got {spec!r}.")
    path = OPTIMIZERS.get(spec.lower().replace("-", "_"), spec)
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise fail(
            name,
            spec,
            "is not a known optimizer",
            f"Use one of {', '.join(OPTIMIZERS)}, or an import path such as 'torch.optim.SGD'.",
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        package = _PACKAGES.get(module_name.split(".")[0])
        if package is None:
            raise fail(name, spec, f"cannot be imported ({error})") from error
        raise ImportError(
            f"`{name}`={spec!r} needs the package `{package}`: `pip install {package}` "
            "(or `pip install lightning-lr[optimizers]`)."
        ) from error
    found = getattr(module, attribute, None)
    if not (isinstance(found, type) and issubclass(found, Optimizer)):
        raise fail(
            name,
            spec,
            "is not a torch.optim.Optimizer class",
            f"Use one of {', '.join(OPTIMIZERS)}, or an import path such as 'torch.optim.SGD'.",
        )
    return found


def check_optimizer_kwargs(cls: type[Optimizer], kwargs: Mapping[str, Any], *, name: str) -> None:
    """Refuse keyword arguments the optimizer does not take, before it is built."""
    for reserved in ("params", "lr", "weight_decay"):
        if reserved in kwargs:
            raise fail(
                f"{name}[{reserved!r}]",
                kwargs[reserved],
                "is set in the wrong place",
                f"Give `{reserved}` as its own hyperparameter, not inside `{name}`.",
            )
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        accepted = ", ".join(p for p in parameters if p not in ("self", "params"))
        raise ValueError(
            f"`{name}` has keys {unknown!r} that {cls.__name__} does not take. It takes: {accepted}."
        )


def effective_weight_decay(spec: Any, weight_decay: float | None) -> float:
    """The weight decay an optimizer will apply: the one given, else the class's own default.

    A callable optimizer hides its default, so it counts as decaying (no-decay groups are kept).
    """
    if weight_decay is not None:
        return float(weight_decay)
    if not isinstance(spec, (str, type)):
        return 1.0
    parameter = inspect.signature(optimizer_class(spec).__init__).parameters.get("weight_decay")
    default = 0.0 if parameter is None else parameter.default
    return float(default) if isinstance(default, (int, float)) else 0.0


def matches(parameter_name: str, pattern: str) -> bool:
    """Whether a pattern picks a parameter.

    A pattern with ``*``, ``?`` or ``[`` is a glob over the full dotted name; any other pattern
    matches a run of whole dotted segments: ``"backbone"`` picks ``backbone.0.weight`` and
    ``"bias"`` picks ``head.bias``, but ``"back"`` picks neither.
    """
    if any(char in pattern for char in "*?["):
        return fnmatch.fnmatchcase(parameter_name, pattern)
    return f".{pattern}." in f".{parameter_name}."


def auto_no_decay(module: nn.Module) -> set[str]:
    """Names of the parameters that should not decay: 1-D ones (biases, scales) and norm layers'."""
    names = {name for name, parameter in module.named_parameters() if parameter.ndim <= 1}
    for prefix, child in module.named_modules():
        if isinstance(child, NORM_LAYERS):
            names.update(f"{prefix}.{name}" if prefix else name for name, _ in child.named_parameters())
    return names


def param_groups(
    module: nn.Module,
    *,
    lr_multipliers: Mapping[str, float] | None = None,
    no_decay: Sequence[str] | None = None,
    weight_decay: float = 0.0,
) -> tuple[list[dict[str, Any]], list[float]]:
    """Split a module's trainable parameters into param groups.

    Args:
        module: the model.
        lr_multipliers: pattern -> LR multiplier (see :func:`matches`); the first matching pattern
            applies, other parameters get 1.
        no_decay: patterns of parameters without weight decay; ``None`` picks them automatically
            (:func:`auto_no_decay`), ``[]`` decays everything. Only used when ``weight_decay > 0``.
        weight_decay: the weight decay of the other parameters.

    Returns:
        The groups (each with ``params``, ``name`` and, for no-decay groups, ``weight_decay=0``)
        and each group's LR multiplier.

    Raises:
        ValueError: a pattern that matches no parameter (a typo, most likely), or a bad multiplier.
    """
    multipliers = dict(lr_multipliers or {})
    for pattern, multiplier in multipliers.items():
        check_non_negative(f"lr_multipliers[{pattern!r}]", multiplier)
    named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    names = [name for name, _ in named]
    _check_patterns_match("lr_multipliers", multipliers, names)
    split_decay = weight_decay > 0
    if no_decay is None:
        exempt = auto_no_decay(module)
    else:
        if isinstance(no_decay, str):
            raise TypeError(f"`no_decay` must be a list of patterns, got the string {no_decay!r}.")
        _check_patterns_match("no_decay", list(no_decay), names)
        exempt = {name for name in names if any(matches(name, pattern) for pattern in no_decay)}
    groups: dict[tuple[str, bool], dict[str, Any]] = {}
    factors: dict[tuple[str, bool], float] = {}
    for name, parameter in named:
        label = next((pattern for pattern in multipliers if matches(name, pattern)), "default")
        decays = not (split_decay and name in exempt)
        key = (label, decays)
        if key not in groups:
            group: dict[str, Any] = {"params": [], "name": label if decays else f"{label}/no_decay"}
            if not decays:
                group["weight_decay"] = 0.0
            groups[key] = group
            factors[key] = float(multipliers.get(label, 1.0))
        groups[key]["params"].append(parameter)
    if not groups:
        raise ValueError(f"{type(module).__name__} has no trainable parameters to optimize.")
    return list(groups.values()), list(factors.values())


def _check_patterns_match(name: str, patterns: Iterable[str], names: list[str]) -> None:
    for pattern in patterns:
        if not any(matches(parameter, pattern) for parameter in names):
            sample = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            raise fail(
                f"{name}",
                pattern,
                "has a pattern that matches no trainable parameter",
                f"Parameter names look like: {sample}.",
            )


def build_optimizer(
    spec: str | type[Optimizer] | Callable[..., Optimizer],
    groups: list[dict[str, Any]],
    multipliers: Sequence[float],
    *,
    lr: float | None,
    weight_decay: float | None = None,
    kwargs: Mapping[str, Any] | None = None,
    lr_scale: float = 1.0,
) -> Optimizer:
    """Build the optimizer and give each group ``peak LR * lr_scale * multiplier``.

    ``spec`` is a name, an import path or a class (built with ``lr``, ``weight_decay`` and
    ``kwargs``), or a callable taking the param groups (LightningCLI's ``OptimizerCallable``,
    which carries its own LR).
    """
    options = dict(kwargs or {})
    if isinstance(spec, (str, type)):
        cls = optimizer_class(spec)
        check_optimizer_kwargs(cls, options, name="optimizer_kwargs")
        if lr is None:
            raise ValueError("`lr` is missing: set the peak learning rate, e.g. lr=1e-3.")
        check_positive("lr", lr)
        if weight_decay is not None:
            options["weight_decay"] = check_non_negative("weight_decay", weight_decay)
        optimizer = cls(groups, lr=lr, **options)  # type: ignore[call-arg]
    elif callable(spec):
        optimizer = spec(groups)
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"`optimizer` callable must return a torch Optimizer, got {optimizer!r}.")
    else:
        raise TypeError(f"`optimizer` must be a name, a class or a callable, got {spec!r}.")
    for group, multiplier in zip(optimizer.param_groups, multipliers):
        group["lr"] = group["lr"] * lr_scale * multiplier
    if lr_scale != 1.0 and isinstance(optimizer.defaults.get("lr"), (int, float)):
        optimizer.defaults["lr"] = optimizer.defaults["lr"] * lr_scale
    return optimizer


def lr_scale(rule: LRScaling, batch_size: int, base_batch_size: int) -> float:
    """How much to scale a peak LR tuned at ``base_batch_size`` for an effective ``batch_size``.

    ``"linear"`` (Goyal et al. 2017) scales by ``batch / base``, ``"sqrt"`` (Krizhevsky 2014,
    common for Adam) by its square root, ``"none"`` by 1.

    Example:
        >>> lr_scale("sqrt", batch_size=512, base_batch_size=128)
        2.0
    """
    check_choice("lr_scaling", rule, ("none", "linear", "sqrt"))
    if rule == "none":
        return 1.0
    ratio = check_positive("batch_size", batch_size) / check_positive("base_batch_size", base_batch_size)
    return ratio if rule == "linear" else math.sqrt(ratio)


def has_mode_switch(optimizer: Optimizer | type[Optimizer]) -> bool:
    """Whether the optimizer (or its class) must be told train/eval mode (schedule-free optimizers)."""
    return callable(getattr(optimizer, "train", None)) and callable(getattr(optimizer, "eval", None))
