"""Notebook submissions: the graded module is the code of the cells tagged `graded`.

When the tags were lost (a notebook re-saved by another tool), the cells that define the
assignment's required names are taken instead. Magics and shell escapes are dropped;
broken cells are reported, never crashed on.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

from autograder.config import Assignment
from autograder.errors import IntakeError

GRADED_TAG = "graded"


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _strip_magics(source: str) -> str:
    """Drop IPython-only lines (%magic, !shell, ?help) so the cell is plain Python."""
    kept = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!", "?")) or stripped.endswith("?") and not stripped.startswith("#"):
            kept.append("")
        else:
            kept.append(line)
    return "\n".join(kept)


def _defined_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def read_notebook_cells(path: Path) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IntakeError(f"{Path(path).name}: not a valid notebook (invalid JSON: {str(error)[:80]})") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise IntakeError(f"{Path(path).name}: not a valid notebook (no list of cells)")
    return [cell for cell in cells if isinstance(cell, dict)]


def module_from_notebook(path: Path, assignment: Assignment) -> tuple[str, tuple[str, ...]]:
    """The module source made of the graded cells, and notes for the student."""
    cells = [c for c in read_notebook_cells(path) if c.get("cell_type") == "code"]
    tagged = [c for c in cells if GRADED_TAG in (c.get("metadata", {}) or {}).get("tags", [])]
    notes: list[str] = []
    chosen = tagged
    if not tagged:
        required = set(assignment.required)
        chosen = []
        for cell in cells:
            try:
                tree = ast.parse(_strip_magics(_cell_source(cell)))
            except SyntaxError:
                continue
            if _defined_names(tree) & required:
                chosen.append(cell)
        notes.append("no cell is tagged 'graded': the cells defining the required functions were graded instead")
    if not chosen:
        raise IntakeError(f"{Path(path).name}: no graded code found (no cell tagged 'graded' and none defining "
                          f"{', '.join(assignment.required[:4]) or 'the required functions'})")
    parts = []
    for index, cell in enumerate(chosen):
        source = _strip_magics(_cell_source(cell))
        try:
            ast.parse(source)
        except SyntaxError as error:
            notes.append(f"graded cell {index + 1} has a syntax error on its line {error.lineno}: {error.msg}")
        parts.append(f"# --- graded cell {index + 1}\n{source}\n")
    return "\n".join(parts), tuple(notes)
