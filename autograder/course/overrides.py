"""Limit overrides: command line > environment (AUTOGRADER_<NAME>) > grading.yaml > defaults."""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from autograder.course.model import Limits, _did_you_mean
from autograder.errors import ConfigError


def apply_overrides(limits: Limits, *, environ: dict[str, str] | None = None, **command_line: Any) -> Limits:
    """Limits after environment (AUTOGRADER_CALL_SECONDS, ...) then command-line overrides.

    `grade --limit NAME=VALUE` sets the environment variable, so the trusted runs (other
    processes, which load grading.yaml themselves) see the same limits.
    """
    environ = os.environ if environ is None else environ
    values = {}
    for f in dataclasses.fields(Limits):
        kind = type(getattr(limits, f.name))
        env_value = environ.get(f"AUTOGRADER_{f.name.upper()}")
        if env_value is not None:
            try:
                values[f.name] = kind(env_value)
                if values[f.name] <= 0:
                    raise ValueError
            except ValueError:
                raise ConfigError(f"environment AUTOGRADER_{f.name.upper()}={env_value!r}: expected a positive number") from None
        if command_line.get(f.name) is not None:
            values[f.name] = kind(command_line[f.name])
    return dataclasses.replace(limits, **values)


def limit_override(text: str) -> tuple[str, str]:
    """`NAME=VALUE` of `grade --limit`, checked: (environment variable, value)."""
    name, _, value = text.partition("=")
    names = [f.name for f in dataclasses.fields(Limits)]
    if name not in names or not value:
        raise ConfigError(f"--limit {text!r}: give NAME=VALUE with NAME one of {', '.join(names)}{_did_you_mean(name, names)}")
    kind = type(getattr(Limits(), name))
    try:
        if kind(value) <= 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"--limit {text!r}: {value!r} is not a positive number") from None
    return f"AUTOGRADER_{name.upper()}", value
