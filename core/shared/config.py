"""Frozen config dataclasses <-> JSON, shared by the tokenizer, training, export and the runtime."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from .errors import ConfigError


def dataclass_from_dict(cls, data, source: str):
    """Build a frozen config dataclass from JSON, refusing unknown or missing keys.

    Lists become tuples where the field's default is a tuple, so a config read
    back from JSON compares equal to the one that was written.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {cls.__name__} must be a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown {cls.__name__} setting(s): {', '.join(unknown)}")
    values = {}
    for key, value in data.items():
        default = fields[key].default
        values[key] = tuple(value) if isinstance(value, list) and isinstance(default, tuple) else value
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{source}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def config_to_dict(config) -> dict:
    """asdict with tuples written as JSON lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def check_int(owner: str, name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}.{name} must be an integer >= {minimum}, got {value!r}")


def check_fraction(owner: str, name: str, value, low: float = 0.0, high: float = 1.0, *,
                   include_low: bool = True, include_high: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value >= low if include_low else value > low) and (value <= high if include_high else value < high)
    if not ok:
        left, right = "[" if include_low else "(", "]" if include_high else ")"
        raise ConfigError(f"{owner}.{name} must be in {left}{low:g}, {high:g}{right}, got {value!r}")
