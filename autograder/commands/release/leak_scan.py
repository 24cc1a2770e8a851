"""Scan a student release for what must never reach students.

Solution code (the lines inside BEGIN/END SOLUTION regions that the README does not
already spell out; a public test may share a line or two of a region with the solution,
as an oracle does, but not three), hidden tests (their names, file names and distinctive
lines), and grading secrets (hidden test ids, solution markers, the course's own path).
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from autograder.course.model import Assignment, Course
from autograder.course.regions import solution_regions

MIN_SECRET_LINE = 20        # shorter lines (`return x`, `out = []`) are too common to be a leak
MIN_HIDDEN_LINE = 30
REGION_IN_TESTS = 3        # solution lines of one region that make a public test a leak


def _normal(line: str) -> str:
    """A code line without indentation, trailing comment or repeated spaces."""
    line = re.sub(r"\s+#.*$", "", line.strip()) if not line.strip().startswith("#") else ""
    return re.sub(r"\s+", " ", line).strip()


def readable_text(name: str, data: bytes) -> str:
    """A release file as a reader sees it: notebooks as their cells' sources and outputs."""
    text = data.decode("utf-8", errors="replace")
    if not name.endswith(".ipynb"):
        return text
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError):
        return text
    parts = []
    for cell in cells:
        source = cell.get("source", "")
        parts.append("".join(source) if isinstance(source, list) else str(source))
        for output in cell.get("outputs", []):
            value = output.get("text", "")
            parts.append("".join(value) if isinstance(value, list) else str(value))
    return "\n".join(parts)


def solution_secrets(course: Course, assignment: Assignment) -> dict[str, tuple[str, str]]:
    """Normalised solution lines -> (where, region) that must not appear in a release."""

    solution_dir = course.solution_dir(assignment)
    readme = solution_dir / "README.md"
    public_text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    public_lines = {_normal(line) for line in public_text.splitlines()}
    secrets: dict[str, str] = {}
    for path in sorted(solution_dir.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        regions = solution_regions(text, str(path))
        inside = {n for r in regions for n in range(r.begin, r.end + 1)}
        outside = {_normal(line) for n, line in enumerate(text.splitlines(), 1) if n not in inside}
        for region in regions:
            for offset, line in enumerate(region.body, start=region.begin + 1):
                normal = _normal(line)
                if len(normal) >= MIN_SECRET_LINE and normal not in outside and normal not in public_lines:
                    where = f"{path.relative_to(course.root)}:{offset}"
                    secrets.setdefault(normal, (where, f"{path.name}:{region.begin}"))
    return secrets


def _test_names(text: str) -> set[str]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    return {node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")}


def hidden_secrets(course: Course, assignment: Assignment, shipped: dict[str, str]) -> tuple[set[str], dict[str, str]]:
    """(words, lines) of the hidden test files that the shipped test files do not contain."""
    suite = course.suite_dir(assignment)
    shipped_text = "\n".join(shipped.values())
    shipped_names = _test_names(shipped_text)
    shipped_lines = {_normal(line) for line in shipped_text.splitlines()}
    words: set[str] = set()
    lines: dict[str, str] = {}
    for path in sorted(suite.rglob("*.py")) if suite.is_dir() else []:
        if path.name in shipped or "__pycache__" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if path.name.startswith("test_"):
            words.add(path.name)
        words |= _test_names(text) - shipped_names
        for number, line in enumerate(text.splitlines(), start=1):
            normal = _normal(line)
            if len(normal) >= MIN_HIDDEN_LINE and normal not in shipped_lines and not normal.startswith(("import ", "from ")):
                lines.setdefault(normal, f"{path.relative_to(course.root)}:{number}")
    for group in assignment.tests:
        if group.visibility != "public":
            words.update(pattern for pattern in group.match if "*" not in pattern and "?" not in pattern)
    return words, lines


def scan_release(course: Course, assignment: Assignment, files: dict[str, bytes]) -> list[str]:
    """One line per leak found in the release files (relative path -> bytes); empty when clean."""
    texts = {name: readable_text(name, data) for name, data in files.items()}
    shipped_tests = {Path(name).name: text for name, text in texts.items() if name.startswith("tests/")}
    solution = solution_secrets(course, assignment)
    words, hidden_lines = hidden_secrets(course, assignment, shipped_tests)
    word_pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(words))) + r")\b") if words else None
    root = str(course.root)
    leaks = []
    for name, text in texts.items():
        per_region: dict[str, list[str]] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            where = f"{name}:{number}" if not name.endswith(".ipynb") else f"{name} (cell text line {number})"
            if "BEGIN SOLUTION" in line or "END SOLUTION" in line:
                leaks.append(f"{where}: a solution marker")
            normal = _normal(line)
            if normal in solution and not name.startswith("tests/"):
                leaks.append(f"{where}: solution code from {solution[normal][0]}")
            elif normal in solution:
                per_region.setdefault(solution[normal][1], []).append(f"{where}: solution code from {solution[normal][0]}")
            elif normal in hidden_lines:
                leaks.append(f"{where}: hidden test code from {hidden_lines[normal]}")
            found = word_pattern.search(line) if word_pattern else None
            if found:
                leaks.append(f"{where}: names the hidden test {found.group(0)!r}")
            if root in line:
                leaks.append(f"{where}: the course repository's path {root}")
        for found in per_region.values():  # an oracle may share a line or two with the solution, not a region
            if len(found) >= REGION_IN_TESTS:
                leaks.extend(found)
    return leaks
