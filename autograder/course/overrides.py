"""Limit overrides: command line > environment (AUTOGRADER_<NAME>) > grading.yaml > defaults.

The command line is the edge: it reads the environment and `--limit NAME=VALUE` once into a
plain {name: value} mapping (`limit_overrides`) and passes it down to `load_course` and to the
trusted runs; nothing below it reads os.environ for limits or writes it.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

from autograder.course.model import Limits, did_you_mean
from autograder.errors import ConfigError

LIMIT_NAMES = tuple(f.name for f in dataclasses.fields(Limits))


def _positive(name: str, value: str, source: str) -> str:
    kind = type(getattr(Limits(), name))
    try:
        if kind(value) <= 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{source}: {value!r} is not a positive number") from None
    return value


def limit_override(text: str) -> tuple[str, str]:
    """`NAME=VALUE` of `grade --limit`, checked: (name, value)."""
    name, _, value = text.partition("=")
    if name not in LIMIT_NAMES or not value:
        raise ConfigError(f"--limit {text!r}: give NAME=VALUE with NAME one of {', '.join(LIMIT_NAMES)}"
                          f"{did_you_mean(name, list(LIMIT_NAMES))}")
    return name, _positive(name, value, f"--limit {text!r}")


def limit_overrides(environ: Mapping[str, str], command_line: list[str] = ()) -> dict[str, str]:
    """{limit name: value} from AUTOGRADER_<NAME> variables, then `--limit NAME=VALUE` (which wins)."""
    overrides = {}
    for name in LIMIT_NAMES:
        variable = f"AUTOGRADER_{name.upper()}"
        if environ.get(variable) is not None:
            overrides[name] = _positive(name, environ[variable], f"environment {variable}={environ[variable]!r}")
    for text in command_line:
        name, value = limit_override(text)
        overrides[name] = value
    return overrides


def apply_overrides(limits: Limits, overrides: Mapping[str, str]) -> Limits:
    """`limits` with each overridden value converted to the field's type."""
    unknown = sorted(set(overrides) - set(LIMIT_NAMES))
    if unknown:
        raise ConfigError(f"unknown limit(s) {', '.join(unknown)}; known: {', '.join(LIMIT_NAMES)}")
    return dataclasses.replace(limits, **{name: type(getattr(limits, name))(value) for name, value in overrides.items()})
