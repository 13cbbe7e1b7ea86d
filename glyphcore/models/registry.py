"""The model registry: ``@register_model`` builders, ``create_model`` and ``list_models``.

Shaped like timm's ``_registry.py`` / ``_factory.py``: a builder is a function registered under its
own name (a duplicate name is refused, as torchvision's registry does). ``create_model`` checks the
arguments users can get wrong (name, activation, sizes, options), calls the builder, and stamps the
result with ``glyph_name`` and ``glyph_args`` so that a checkpoint can store ``model_name`` and
``model_args`` and ``create_model(model_name, **model_args)`` rebuilds the same architecture.

A builder has the signature::

    @register_model(default_input=(1, 100, 100), default_classes=52)
    def my_net(*, num_classes: int, in_channels: int, input_size: tuple[int, int],
               act_layer: type[nn.Module], batchnorm: bool, dropout: float,
               width: int = 32) -> nn.Module: ...

Its keyword arguments after ``dropout`` are its options (``create_model(..., width=64)``); their
defaults are recorded in ``glyph_args`` too. The first line of its docstring is its description.
"""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from glyphcore.errors import ConfigError
from glyphcore.models.activations import get_act_layer

__all__ = [
    "ModelEntry",
    "register_model",
    "create_model",
    "rebuild_model",
    "MAX_INPUT_SIDE",
    "list_models",
    "model_entry",
    "normalize_input_size",
    "require_min_size",
    "check_option",
]

# The largest image side (px) a model rebuilt from a file may ask for: 4096 x 4096 already means a
# 64 MiB float input per channel; an absurd size in a checkpoint is refused before anything is allocated.
MAX_INPUT_SIDE = 4096

# The arguments every builder takes; anything else in its signature is a model option.
_COMMON_ARGS = ("num_classes", "in_channels", "input_size", "act_layer", "batchnorm", "dropout")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model.

    Attributes:
        name: the registry name (``seed_cnn``).
        builder: the registered function.
        description: one line, from the builder's docstring.
        default_input: (C, H, W) the model was designed for, e.g. (1, 100, 100).
        default_classes: the class count of its source, e.g. 52.
        options: option name -> default value, read from the builder's signature.
        recorded: option name -> the value stored in ``glyph_args`` whatever was asked (e.g.
            ``pretrained`` is recorded as False: a rebuilt model gets its weights from the
            checkpoint and must never try to download).
        option_types: option name -> the type its signature declares (bool, int, float, str, or
            another annotation, which the builder checks itself).
    """

    name: str
    builder: Callable[..., nn.Module]
    description: str
    default_input: tuple[int, int, int]
    default_classes: int
    options: dict[str, Any] = field(default_factory=dict)
    recorded: dict[str, Any] = field(default_factory=dict)
    option_types: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    fn: Callable[..., nn.Module] | None = None,
    *,
    name: str | None = None,
    default_input: tuple[int, int, int] = (1, 100, 100),
    default_classes: int = 52,
    recorded: dict[str, Any] | None = None,
) -> Any:
    """Register a model builder; usable bare (``@register_model``) or with arguments.

    Args:
        fn: the builder (when used bare).
        name: registry name; defaults to the function's name.
        default_input: (C, H, W) the model was designed for.
        default_classes: the class count of its source.
        recorded: options whose recorded value is fixed (see ``ModelEntry.recorded``).

    Returns:
        The builder, unchanged (or a decorator when called with arguments only).

    Raises:
        ValueError: a model of that name is already registered (a programming error, not user input).
    """

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        model_name = name or builder.__name__
        if model_name in _REGISTRY:
            raise ValueError(
                f"a model named {model_name!r} is already registered "
                f"(by {_REGISTRY[model_name].builder.__module__}); pick another name"
            )
        params = inspect.signature(builder).parameters
        missing = [a for a in _COMMON_ARGS if a not in params]
        if missing:
            raise TypeError(f"model builder {model_name!r} must accept {', '.join(missing)}")
        options = {
            k: p.default
            for k, p in params.items()
            if k not in _COMMON_ARGS and p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        doc = inspect.getdoc(builder) or model_name
        hints = typing.get_type_hints(builder)
        _REGISTRY[model_name] = ModelEntry(
            name=model_name,
            builder=builder,
            description=doc.strip().splitlines()[0],
            default_input=tuple(int(v) for v in default_input),  # type: ignore[arg-type]
            default_classes=int(default_classes),
            options=options,
            recorded=dict(recorded or {}),
            option_types={k: hints.get(k, type(v)) for k, v in options.items()},
        )
        return builder

    if fn is not None:
        return decorate(fn)
    return decorate


def list_models() -> list[str]:
    """The registered model names, in registration order (the report's ``seed_cnn`` first)."""
    return list(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name`` (description, default input, options).

    Raises:
        ConfigError: unknown name; the message lists the valid ones.
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}: choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def normalize_input_size(input_size: int | Sequence[int]) -> tuple[int, int]:
    """``100`` or ``(100, 100)`` or ``[100, 100]`` -> ``(100, 100)`` (H, W in pixels).

    Raises:
        ConfigError: not one or two positive integers.
    """
    if isinstance(input_size, bool):
        sizes: list[Any] = [input_size]
    elif isinstance(input_size, int):
        sizes = [input_size, input_size]
    else:
        try:
            sizes = list(input_size)
        except TypeError:
            sizes = [input_size]
    if len(sizes) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ConfigError(
            f"input_size must be one positive integer or (height, width) in pixels, e.g. 100 or (100, 100); "
            f"got {input_size!r}"
        )
    return int(sizes[0]), int(sizes[1])


def require_min_size(model_name: str, input_size: tuple[int, int], minimum: tuple[int, int], why: str = "") -> None:
    """Raise ``ConfigError`` if ``input_size`` (H, W) is below ``minimum`` (H, W) in either side.

    Args:
        model_name: for the message.
        input_size: the requested (H, W).
        minimum: the smallest (H, W) the model can take.
        why: what runs out of pixels, e.g. "its three stride-2 stages"; added to the message.
    """
    h, w = input_size
    if h < minimum[0] or w < minimum[1]:
        entry = _REGISTRY.get(model_name)
        default = f"; it was designed for {entry.default_input[1]}x{entry.default_input[2]}" if entry else ""
        reason = f" ({why})" if why else ""
        raise ConfigError(
            f"{model_name} cannot take {h}x{w} images: it needs at least {minimum[0]}x{minimum[1]} pixels"
            f"{reason}{default}. Resize the data or pick a model for small images (e.g. lenet, mlp, tiny_conv)"
        )


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


_TRUE_WORDS, _FALSE_WORDS = ("true", "yes", "on"), ("false", "no", "off")


def check_option(model_name: str, key: str, value: Any, kind: Any) -> Any:
    """``value`` of option ``key`` as its declared type ``kind``; ConfigError when it is not one.

    A bool option takes True/False or the words true/false (yes/no, on/off), converted explicitly:
    never a number or any other string, whose truth value would be an accident (``"false"`` is
    truthy). An int takes an int, a float an int or a finite float, a str a str. Other annotations
    (tuples of widths) are left to the builder, which checks them itself.
    """
    what = f"{model_name}'s option {key}"
    if kind is bool:
        if isinstance(value, bool):
            return value
        word = value.strip().lower() if isinstance(value, str) else None
        if word in _TRUE_WORDS or word in _FALSE_WORDS:
            return word in _TRUE_WORDS
        raise ConfigError(f"{what} must be true or false, got {value!r}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{what} must be a whole number, got {value!r}")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{what} must be a finite number, got {value!r}")
        return float(value)
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"{what} must be text, got {value!r}")
    return value


def _checked_options(entry: ModelEntry, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` of model ``entry``, each checked against its declared type; ConfigError naming the
    valid options for an unknown one."""
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in entry.options.items()) or "none"
        raise ConfigError(f"{entry.name} has no option {', '.join(unknown)}; its options are: {valid}")
    return {k: check_option(entry.name, k, v, entry.option_types.get(k)) for k, v in options.items()}


def _plain(value: Any) -> Any:
    """Options as plain JSON-able values (tuples -> lists) so a weights_only checkpoint holds them."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def create_model(
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    input_size: int | Sequence[int],
    activation: str = "silu",
    batchnorm: bool = True,
    dropout: float = 0.0,
    **options: Any,
) -> nn.Module:
    """Build the registered model ``name``.

    Args:
        name: one of ``list_models()``.
        num_classes: output logits.
        in_channels: image channels (1 for glyphs and MNIST, 3 for CIFAR).
        input_size: image side in pixels, or (H, W).
        activation: one of ``ACTIVATION_NAMES`` (see ``glyphcore.models.activations``).
        batchnorm: include the model's BatchNorm layers.
        dropout: dropout probability in [0, 1) before the classifier's fully connected layers;
            0 adds no Dropout layers at all.
        **options: model-specific options (``model_entry(name).options``), e.g. ``depth=19`` for vgg.

    Returns:
        The model, with ``glyph_name`` (str) and ``glyph_args`` (dict: every argument above,
        canonicalised, plus every option with its default filled in).

    Raises:
        ConfigError: unknown model, activation or option; a bad size or count; an input size the
            model cannot take (the message names the sizes it can).
    """
    entry = model_entry(name)
    act_layer = get_act_layer(activation)
    activation = str(activation).strip().lower().replace("-", "_")
    num_classes = _positive_int(num_classes, "num_classes")
    in_channels = _positive_int(in_channels, "in_channels")
    hw = normalize_input_size(input_size)
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    options = _checked_options(entry, options)
    common: dict[str, Any] = {"num_classes": num_classes, "in_channels": in_channels, "batchnorm": bool(batchnorm)}
    common["dropout"] = float(dropout)
    model = entry.builder(input_size=hw, act_layer=act_layer, **common, **options)
    chosen = {**entry.options, **options, **entry.recorded}
    model.glyph_name = name  # type: ignore[assignment]  # read back by the trainer and checkpoints
    model.glyph_args = {  # type: ignore[assignment]
        **common,
        "input_size": [hw[0], hw[1]],
        "activation": activation,
        **{k: _plain(v) for k, v in chosen.items()},
    }
    return model


def rebuild_model(name: Any, model_args: Any, state_dict: Any = None, *, source: str = "the checkpoint") -> nn.Module:
    """Rebuild a model from arguments read from a file (a checkpoint's ``model_name``/``model_args``).

    Unlike ``create_model`` for a user's own request, nothing read from a file may fetch weights or
    run code: every ``recorded`` option (resnet18's ``pretrained``) is forced to its recorded value,
    whatever the file says, so a rebuild never reaches torch hub or the network. Sizes are capped
    (``MAX_INPUT_SIDE``), and with ``state_dict`` the architecture is first built on the meta device
    (no memory) and its parameter shapes compared with the weights, so that arguments describing a
    huge model are refused before anything is allocated.

    Args:
        name: the registry name stored in the file.
        model_args: the stored ``create_model`` keyword arguments.
        state_dict: the stored weights, to check the shapes against before building for real.
        source: what the arguments come from, for messages (e.g. the checkpoint's path).

    Returns:
        The model (weights freshly initialised; load the state_dict into it).

    Raises:
        ConfigError: an unknown model, malformed or absurd arguments, or weights of another shape.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ConfigError(
            f"{source} holds a {name!r} model, which this glyphcore does not know (it knows "
            f"{', '.join(_REGISTRY)}): update glyphcore or retrain with a known model"
        )
    if not isinstance(model_args, dict) or not all(isinstance(k, str) for k in model_args):
        raise ConfigError(f"{source} has malformed model_args ({type(model_args).__name__}): re-save it with glyphcore")
    entry = _REGISTRY[name]
    args = {**model_args, **entry.recorded}
    hw = normalize_input_size(args.get("input_size", entry.default_input[1:]))
    if max(hw) > MAX_INPUT_SIDE:
        raise ConfigError(
            f"{source} asks for {hw[0]}x{hw[1]} inputs, above the {MAX_INPUT_SIDE}x{MAX_INPUT_SIDE} a glyphcore "
            f"model may take: the file is damaged or not a real glyphcore checkpoint"
        )
    try:
        if state_dict is not None:
            import torch

            with torch.device("meta"):
                shell = create_model(name, **args)
            want = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
            if not isinstance(state_dict, dict):
                raise ConfigError(f"{source} holds no weights (state_dict is {type(state_dict).__name__})")
            have = {k: tuple(getattr(v, "shape", ())) for k, v in state_dict.items()}
            if want != have:
                diff = sorted(set(want) ^ set(have))[:3] or [k for k in want if want[k] != have.get(k)][:3]
                raise ConfigError(
                    f"{source}: its weights do not fit a {name} model with {model_args} (first differences: "
                    f"{', '.join(diff)}): the file is damaged or was edited"
                )
        return create_model(name, **args)
    except TypeError as e:
        raise ConfigError(f"{source}: its {name} model cannot be rebuilt from its model_args ({e})") from None
