"""Read and validate grading.yaml (and each suite's grading.yaml) into the course model.

Loaded once, at the edge. Every error names the file and line, and unknown keys get a
"did you mean". The test groups of an assignment may live beside its suite, in
tests/grading/<id>/grading.yaml, validated the same way.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from autograder.course.model import (
    DEVICES,
    FEEDBACK_LEVELS,
    ID_PATTERN,
    VISIBILITIES,
    Assignment,
    Cluster,
    Course,
    Defaults,
    Feedback,
    Forbidden,
    LatePolicy,
    Limits,
    TestGroup,
    did_you_mean,
)
from autograder.course.overrides import apply_overrides
from autograder.errors import ConfigError
from autograder.pipeline.dtype_rule import DtypeRule


class _Located:
    """A YAML value with the line it came from (1-based)."""

    def __init__(self, node: yaml.Node, value: Any):
        self.line = node.start_mark.line + 1
        self.value = value


def _plain(node: yaml.Node, path: Path, constructor: yaml.SafeLoader) -> Any:
    """Convert a composed YAML node to Python values, keeping lines on mappings."""
    if isinstance(node, yaml.MappingNode):
        out: dict[str, _Located] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: keys must be plain names")
            if key in out:
                raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: key {key!r} appears twice")
            out[key] = _Located(value_node, _plain(value_node, path, constructor))
            out[key].line = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_Located(item, _plain(item, path, constructor)) for item in node.value]
    return _scalar(node, constructor)


def _scalar(node: yaml.ScalarNode, constructor: yaml.SafeLoader) -> Any:
    return constructor.construct_object(node, deep=True)


class _Reader:
    """Validates one mapping: typed fields, unknown keys with a suggestion, file:line."""

    def __init__(self, path: Path, where: str, mapping: Any, line: int):
        if not isinstance(mapping, dict):
            raise ConfigError(f"{path}:{line}: {where} must be a mapping of keys to values")
        self.path, self.where, self.mapping, self.line = path, where, mapping, line

    def check_keys(self, allowed: list[str]) -> None:
        for key, located in self.mapping.items():
            if key not in allowed:
                raise ConfigError(
                    f"{self.path}:{located.line}: unknown key {key!r} in {self.where}"
                    f"{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}"
                )

    def error(self, key: str, message: str) -> ConfigError:
        line = self.mapping[key].line if key in self.mapping else self.line
        return ConfigError(f"{self.path}:{line}: {self.where}.{key}: {message}")

    def has(self, key: str) -> bool:
        return key in self.mapping

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = dataclasses.MISSING) -> Any:
        if key not in self.mapping:
            if default is dataclasses.MISSING:
                raise ConfigError(f"{self.path}:{self.line}: {self.where} needs the key {key!r}")
            return default
        value = self.mapping[key].value
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.error(key, f"expected {names}, got {value!r}")
        return value

    def get_list(self, key: str, default: tuple = ()) -> tuple:
        if key not in self.mapping:
            return default
        value = self.mapping[key].value
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {value!r}")
        items = []
        for item in value:
            if isinstance(item.value, (dict, list)):
                raise ConfigError(f"{self.path}:{item.line}: {self.where}.{key}: expected plain values")
            items.append(item.value)
        return tuple(items)

    def sub(self, key: str) -> "_Reader":
        located = self.mapping.get(key)
        if located is None:
            return _Reader(self.path, f"{self.where}.{key}", {}, self.line)
        return _Reader(self.path, f"{self.where}.{key}", located.value, located.line)

    def positive(self, key: str, kind: type, default: Any) -> Any:
        value = self.get(key, kind, default)
        if value is not None and value <= 0:
            raise self.error(key, f"must be positive, got {value!r}")
        return value


def _read_limits(reader: _Reader, base: Limits) -> Limits:
    names = [f.name for f in dataclasses.fields(Limits)]
    reader.check_keys(names)
    values = {}
    for f in dataclasses.fields(Limits):
        kind = float if isinstance(getattr(base, f.name), float) else int
        values[f.name] = reader.positive(f.name, kind, getattr(base, f.name))
    return Limits(**values)


def _read_feedback(reader: _Reader, base: Feedback) -> Feedback:
    reader.check_keys(["public", "hidden", "show_output"])
    public = reader.get("public", str, base.public)
    hidden = reader.get("hidden", str, base.hidden)
    for key, level in (("public", public), ("hidden", hidden)):
        if level not in FEEDBACK_LEVELS:
            raise reader.error(key, f"{level!r} is not one of {', '.join(FEEDBACK_LEVELS)}")
    return Feedback(public=public, hidden=hidden, show_output=reader.get("show_output", bool, base.show_output))


def _read_defaults(reader: _Reader) -> Defaults:
    reader.check_keys(["limits", "hypothesis_examples", "feedback"])
    return Defaults(
        limits=_read_limits(reader.sub("limits"), Limits()),
        hypothesis_examples=reader.positive("hypothesis_examples", int, Defaults.hypothesis_examples),
        feedback=_read_feedback(reader.sub("feedback"), Feedback()),
    )


def _read_due(reader: _Reader) -> dt.datetime | None:
    value = reader.get("due", (str, dt.datetime, dt.date), None)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise reader.error("due", f"{value!r} is not an ISO date-time such as 2025-04-01T23:59:00+08:00") from None
    elif not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, 23, 59, 59)
    if value.tzinfo is None:
        raise reader.error("due", f"{value.isoformat()} needs a time zone, e.g. +08:00")
    return value


def _read_groups(reader: _Reader) -> tuple[TestGroup, ...]:
    if not reader.has("tests"):
        raise reader.error("tests", "every assignment lists its test groups with points")
    items = reader.mapping["tests"].value
    if not isinstance(items, list) or not items:
        raise reader.error("tests", "expected a non-empty list of test groups")
    groups, names = [], set()
    for index, item in enumerate(items):
        group = _Reader(reader.path, f"{reader.where}.tests[{index}]", item.value, item.line)
        group.check_keys(["group", "match", "points", "visibility", "hypothesis_examples", "feedback"])
        name = group.get("group", str)
        if name in names:
            raise group.error("group", f"the group name {name!r} is used twice")
        names.add(name)
        match = group.get_list("match")
        if not match:
            raise group.error("match", "give one or more test id patterns, e.g. test_public.py::test_sgd_*")
        points = group.get("points", float)
        if points < 0:
            raise group.error("points", f"must not be negative, got {points}")
        visibility = group.get("visibility", str, "hidden")
        if visibility not in VISIBILITIES:
            raise group.error("visibility", f"{visibility!r} is not one of {', '.join(VISIBILITIES)}{did_you_mean(visibility, list(VISIBILITIES))}")
        feedback = group.get("feedback", str, None)
        if feedback is not None and feedback not in FEEDBACK_LEVELS:
            raise group.error("feedback", f"{feedback!r} is not one of {', '.join(FEEDBACK_LEVELS)}")
        groups.append(TestGroup(
            name=name, match=tuple(str(m) for m in match), points=points, visibility=visibility,
            hypothesis_examples=group.positive("hypothesis_examples", int, None), feedback=feedback, line=item.line,
            source=str(reader.path),
        ))
    return tuple(groups)


ASSIGNMENT_KEYS = [
    "title", "lecture", "module", "files", "required", "allowed_imports", "forbidden", "devices",
    "due", "late", "tests", "unscored", "limits", "hypothesis_examples", "feedback", "preload",
]


SUITE_FILE = "grading.yaml"   # tests/grading/<id>/grading.yaml: an assignment's groups beside its suite


SUITE_KEYS = ["tests", "unscored"]


def _suite_reader(reader: _Reader, suite_dir: Path) -> _Reader:
    """The reader of the assignment's test groups: its own `tests:` or its suite's grading.yaml."""
    if reader.has("tests"):
        return reader
    path = suite_dir / SUITE_FILE
    if not path.is_file():
        raise reader.error("tests", f"list the test groups here or in {path}")
    suite = _Reader(path, f"{reader.where.split('.')[-1]} (suite)", _compose(path), 1)
    suite.check_keys(SUITE_KEYS)
    return suite


def _read_assignment(reader: _Reader, assignment_id: str, defaults: Defaults, root: Path,
                     limits: Mapping[str, str]) -> Assignment:
    reader.check_keys(ASSIGNMENT_KEYS)
    if not ID_PATTERN.match(assignment_id):
        raise ConfigError(f"{reader.path}:{reader.line}: assignment id {assignment_id!r} must look like a04_optimizers")
    module = reader.get("module", str)
    if not module.endswith(".py") or "/" in module:
        raise reader.error("module", f"{module!r} must be a file name ending in .py")
    forbidden = reader.sub("forbidden")
    forbidden.check_keys(["imports", "calls", "ops", "dtypes"])
    dtypes = forbidden.sub("dtypes")
    dtypes.check_keys(["names", "codes", "within"])
    if dtypes.mapping and not dtypes.get_list("within"):
        raise dtypes.error("within", "name the functions the dtype rule applies to, e.g. [round_to_fp16]")
    late = reader.sub("late")
    late.check_keys(["grace_minutes", "per_day", "max_days"])
    devices = reader.get_list("devices", ("cpu",))
    for device in devices:
        if device not in DEVICES:
            raise reader.error("devices", f"{device!r} is not one of {', '.join(DEVICES)}")
    hypothesis_examples = reader.positive("hypothesis_examples", int, defaults.hypothesis_examples)
    groups = _suite_reader(reader, root / "tests" / "grading" / assignment_id)
    return Assignment(
        id=assignment_id,
        title=reader.get("title", str),
        lecture=reader.get("lecture", int),
        module=module,
        files=reader.get_list("files", (module,)),
        required=reader.get_list("required"),
        allowed_imports=reader.get_list("allowed_imports", ("*",)),
        forbidden=Forbidden(
            imports=forbidden.get_list("imports"),
            calls=forbidden.get_list("calls"),
            ops=forbidden.get_list("ops"),
            dtypes=DtypeRule(names=tuple(map(str, dtypes.get_list("names"))), codes=tuple(map(str, dtypes.get_list("codes"))),
                             within=tuple(map(str, dtypes.get_list("within")))),
        ),
        devices=devices,
        due=_read_due(reader),
        late=LatePolicy(
            grace_minutes=late.get("grace_minutes", float, 0.0),
            per_day=late.get("per_day", float, 0.0),
            max_days=late.get("max_days", int, None),
        ),
        tests=_read_groups(groups),
        unscored=groups.get_list("unscored"),
        limits=apply_overrides(_read_limits(reader.sub("limits"), defaults.limits), limits),  # overrides > file
        hypothesis_examples=hypothesis_examples,
        feedback=_read_feedback(reader.sub("feedback"), defaults.feedback),
        preload=reader.get_list("preload", ("numpy",)),
    )


def load_course(path: str | os.PathLike | None = None, *, limits: Mapping[str, str] | None = None) -> Course:
    """Load and validate grading.yaml (default: ./grading.yaml); `limits` overrides every assignment's
    limits ({name: value}, see course.overrides.limit_overrides). A pure function of the file and them."""
    path = Path(path or "grading.yaml").resolve()
    top = _Reader(path, "grading.yaml", _compose(path), 1)
    top.check_keys(["course", "defaults", "assignments", "cluster"])
    defaults = _read_defaults(top.sub("defaults"))
    assignments_reader = top.sub("assignments")
    if not assignments_reader.mapping:
        raise ConfigError(f"{path}:{top.line}: grading.yaml needs at least one assignment under 'assignments'")
    assignments = {
        key: _read_assignment(assignments_reader.sub(key), key, defaults, path.parent, limits or {})
        for key in assignments_reader.mapping
    }
    return Course(name=top.get("course", str), defaults=defaults, assignments=assignments, path=path, root=path.parent,
                  limit_overrides=dict(limits or {}), cluster=_read_cluster(top.sub("cluster")))


def _read_cluster(reader: _Reader) -> Cluster:
    """The `cluster:` section (Slurm): partition, account, time, memory, cpus, gres, shard_size, sbatch."""
    reader.check_keys([f.name for f in dataclasses.fields(Cluster)])
    base = Cluster()
    if reader.has("time") and not isinstance(reader.mapping["time"].value, str):
        raise reader.error("time", 'write it in quotes, e.g. "1:00:00" (YAML reads 1:00:00 unquoted as seconds)')
    text = {name: str(reader.get(name, (str, int), getattr(base, name))) for name in ("partition", "account", "time", "memory", "gres")}
    return Cluster(**text, cpus=reader.positive("cpus", int, base.cpus),
                   shard_size=reader.positive("shard_size", int, base.shard_size),
                   sbatch=tuple(str(option) for option in reader.get_list("sbatch")))


def _compose(path: Path) -> Any:
    """Read one YAML file into mappings that remember their lines; errors name file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}; run from the course repository or pass --config") from None
    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 50x faster
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(error, 'problem', error)}") from None
    if node is None:
        raise ConfigError(f"{path}:1: the file is empty")
    constructor = yaml.SafeLoader("")  # only its constructor is used: YAML scalars to Python values
    try:
        return _plain(node, path, constructor)
    finally:
        constructor.dispose()


def check_suite_coverage(assignment: Assignment, test_ids: list[str], path: Path) -> list[str]:
    """Problems between the suite and the groups: unpointed tests, groups matching nothing."""
    problems = []
    for test_id in test_ids:
        if assignment.group_for(test_id) is None and not assignment.is_unscored(test_id):
            problems.append(f"{path}: test {test_id} of {assignment.id} is worth no points; add it to a group or to 'unscored'")
    for group in assignment.tests:
        if not any(group.matches(test_id) for test_id in test_ids):
            problems.append(f"{group.where}: group {group.name!r} of {assignment.id} matches no test ({', '.join(group.match)})")
        if group.visibility == "public":
            for test_id in test_ids:
                if group.matches(test_id) and not test_id.startswith("test_public"):
                    problems.append(f"{group.where}: public group {group.name!r} matches {test_id}, which is not in a test_public*.py file")
    return problems
