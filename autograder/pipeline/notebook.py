"""Notebooks: build the release notebook, and take the graded module out of a submitted one.

The graded module is the code of the cells tagged `graded`, in notebook order, with their
imports moved to the top (so reordered cells still import). When the tags were lost (a
notebook re-saved by another tool), the cells that define the required names, and cells
made only of imports and definitions, are taken instead. Magics, shell escapes, duplicated cells and cells
converted to markdown are dropped or repaired with a note; a cell with a syntax error is
left out with a note naming it. Only an unreadable notebook, or one with no graded code
at all, is refused (IntakeError, one line).
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from autograder.course.model import Assignment
from autograder.errors import IntakeError
from autograder.pipeline.scan import defined_names

GRADED_TAG = "graded"
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}   # %%magic whose body is Python
HELP_LINE = re.compile(r"^\s*[\w.]*\?{1,2}\s*$|^\s*\?{1,2}[\w.]+\s*$")
MAGIC_LINE = re.compile(r"^\s*(%|!|[\w., ]+=\s*[%!])")


# --------------------------------------------------------------------------- reading

def _cell_source(cell: dict) -> str:
    source = cell.get("source", cell.get("input", ""))   # "input": nbformat 3 code cells
    if isinstance(source, list):
        return "".join(part for part in source if isinstance(part, str))
    return source if isinstance(source, str) else ""


def _tags(cell: dict) -> list:
    metadata = cell.get("metadata")
    tags = metadata.get("tags", []) if isinstance(metadata, dict) else []
    return tags if isinstance(tags, list) else []


def read_notebook_cells(path: Path) -> list[dict]:
    """The notebook's cells (nbformat 4, or 3 with worksheets); IntakeError when unreadable."""
    name = Path(path).name
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise IntakeError(f"{name}: not a valid notebook (not UTF-8 text); re-save it from Jupyter") from None
    except json.JSONDecodeError as error:
        raise IntakeError(f"{name}: not a valid notebook (invalid JSON at line {error.lineno}: {error.msg}); "
                          "re-save it from Jupyter or submit the .py file") from None
    except OSError as error:
        raise IntakeError(f"{name}: cannot be read ({error.strerror})") from None
    if not isinstance(data, dict):
        raise IntakeError(f"{name}: not a valid notebook (the JSON is not an object with cells)")
    cells = data.get("cells")
    if cells is None and isinstance(data.get("worksheets"), list):
        cells = [c for sheet in data["worksheets"] if isinstance(sheet, dict) for c in sheet.get("cells", [])]
    if not isinstance(cells, list):
        raise IntakeError(f"{name}: not a valid notebook (no list of cells)")
    return [cell for cell in cells if isinstance(cell, dict)]


def _python_of_cell(source: str) -> tuple[str | None, str]:
    """(plain Python of a code cell or None when the cell is not Python, what was dropped)."""
    lines = source.splitlines()
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        magic = first[2:].split()[0] if first[2:].split() else ""
        if magic not in PYTHON_CELL_MAGICS:
            return None, f"the %%{magic} cell magic"
        lines, source = lines[1:], "\n".join(lines[1:])
    try:
        ast.parse(source)
        return source, ""
    except (SyntaxError, ValueError):
        pass
    kept, dropped = [], []
    for line in lines:
        if MAGIC_LINE.match(line) or HELP_LINE.match(line):
            indent = line[: len(line) - len(line.lstrip())]
            kept.append(f"{indent}pass")
            dropped.append(line.strip()[:30])
        else:
            kept.append(line)
    return "\n".join(kept), (f"IPython lines ({', '.join(dropped[:2])})" if dropped else "")


def _label(number: int, source: str) -> str:
    """'cell 6 (class Counter:)': the position and first code line, so the student finds the cell."""
    lines = [line.strip() for line in source.splitlines() if line.strip() and not line.strip().startswith("#")]
    first = lines[0] if lines else ""
    return f"cell {number}" + (f" ({first[:40]}{'...' if len(first) > 40 else ''})" if first else "")


DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


def _only_definitions(tree: ast.Module) -> bool:
    """A cell of imports, functions, classes and constants: module code, not a scratch cell that runs things."""
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    return bool(body) and all(isinstance(n, DEFINITIONS) and not (isinstance(n, (ast.Assign, ast.AnnAssign))
                                                                   and isinstance(n.value, ast.Call)) for n in body)


def _hoist_imports(parts: list[tuple[int, str, ast.Module]]) -> str:
    """Join the cells, with every top-level import moved above the first cell (once each)."""
    imports, bodies = [], []
    for number, source, tree in parts:
        lines = source.splitlines()
        drop = set()
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                statement = "\n".join(lines[node.lineno - 1: node.end_lineno])
                if statement not in imports:
                    imports.append(statement)
                drop.update(range(node.lineno - 1, node.end_lineno))
        body = "\n".join("" if index in drop else line for index, line in enumerate(lines))
        bodies.append(f"# --- notebook cell {number}\n{body.strip()}\n")
    future = [s for s in imports if s.startswith("from __future__")]
    rest = [s for s in imports if not s.startswith("from __future__")]
    return "\n".join(future + rest) + "\n\n\n" + "\n\n".join(bodies)


def module_from_notebook(path: Path, assignment: Assignment) -> tuple[str, tuple[str, ...]]:
    """The module source made of the graded cells, and one-line notes for the student."""
    name = Path(path).name
    cells = read_notebook_cells(path)
    notes: list[str] = []
    numbered = list(enumerate(cells, start=1))
    tagged = [(n, c) for n, c in numbered if GRADED_TAG in _tags(c)]
    converted = [n for n, c in tagged if c.get("cell_type") != "code"]
    if converted:
        notes.append(f"{name}: graded cell(s) {', '.join(map(str, converted))} are no longer code cells and were "
                     "not graded; change them back to Code")
    candidates = [(n, c) for n, c in tagged if c.get("cell_type") == "code"]
    fallback = not candidates
    if fallback:
        candidates = [(n, c) for n, c in numbered if c.get("cell_type") == "code"]
    parts: list[tuple[int, str, ast.Module]] = []
    seen_sources: dict[str, int] = {}
    definers: dict[str, int] = {}
    for number, cell in candidates:
        source, dropped = _python_of_cell(_cell_source(cell))
        if source is None or not source.strip():
            if source is None and not fallback:
                notes.append(f"{name}: graded {_label(number, _cell_source(cell))} holds {dropped}, not Python, and was not graded")
            continue
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError) as error:
            if not fallback:
                line = getattr(error, "lineno", None)
                notes.append(f"{name}: graded {_label(number, source)} has a syntax error"
                             + (f" on its line {line}" if line else "") + f" ({getattr(error, 'msg', error)}); "
                             "it was left out, so what it defines is missing")
            continue
        if fallback and not (defined_names(tree) & set(assignment.required) or _only_definitions(tree)):
            continue
        if source.strip() in seen_sources:
            notes.append(f"{name}: cell {number} duplicates cell {seen_sources[source.strip()]}; graded once")
            continue
        seen_sources[source.strip()] = number
        for defined in sorted(defined_names(tree) & set(assignment.required)):
            if defined in definers:
                notes.append(f"{name}: cells {definers[defined]} and {number} both define {defined}; "
                             f"the later one (cell {number}) is graded")
            definers[defined] = number
        if dropped and not fallback:
            notes.append(f"{name}: graded {_label(number, source)}: {dropped} ignored")
        parts.append((number, source, tree))
    if fallback and parts:
        notes.insert(0, f"{name}: no cell is tagged '{GRADED_TAG}'; the cells that define functions were graded")
    if not parts:
        wanted = ", ".join(assignment.required[:4]) or "the required functions"
        raise IntakeError(f"{name}: no graded code found: no code cell is tagged '{GRADED_TAG}' and none defines "
                          f"{wanted}; submit the release notebook with your code in its graded cells")
    missing = [n for n in assignment.required if n not in definers]
    if missing:
        notes.append(f"{name}: the graded cells do not define {', '.join(missing)} (was a graded cell deleted?)")
    return _hoist_imports(parts), tuple(notes)


# --------------------------------------------------------------------------- building

def module_chunks(source: str) -> list[str]:
    """Split a module into cells: the header (docstring, imports), then one per top-level def or class."""
    tree = ast.parse(source)
    lines = source.splitlines()
    starts = []
    for node in tree.body[1:] if tree.body else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            while start > 0 and lines[start - 1].lstrip().startswith("#"):
                start -= 1
            starts.append(start)
    bounds = [0] + [s for s in starts if s > 0] + [len(lines)]
    chunks = ["\n".join(lines[a:b]).strip("\n") for a, b in zip(bounds, bounds[1:])]
    return [chunk for chunk in chunks if chunk.strip()]


def _markdown_sections(readme: str) -> list[str]:
    """The README cut at its `## ` headings (outside code fences), one markdown cell each."""
    sections, current, fenced = [], [], False
    for line in readme.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if line.startswith("## ") and not fenced and current:
            sections.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    sections.append("\n".join(current).strip("\n"))
    return [s for s in sections if s.strip()]


def _task_section(chunk: str, sections: list[str], taken: set[str] | None = None) -> list[str]:
    """The README sections headed by the tasks this code chunk raises for ('## Task 3.1: ...')."""
    tasks = re.findall(r'NotImplementedError\("(Task [\d.]*\d)', chunk)
    found = []
    for task in dict.fromkeys(tasks):
        pattern = re.compile(rf"## {re.escape(task)}(?![\d.]\d)")
        found += [s for s in sections if pattern.match(s) and s not in found]
    return found


def build_notebook(assignment: Assignment, readme: str, stub: str) -> str:
    """The release notebook <id>.ipynb as text: README, graded stub cells, a cell running the public tests."""
    import nbformat
    from nbformat import v4

    sections = _markdown_sections(readme)
    chunks = module_chunks(stub)
    placed = {index: _task_section(chunk, sections) for index, chunk in enumerate(chunks)}
    moved = {section for found in placed.values() for section in found}
    cells = [v4.new_markdown_cell(section) for section in sections if section not in moved]
    cells.append(v4.new_markdown_cell(
        "## Your code\n\n"
        f"The cells tagged `{GRADED_TAG}` below make up `{assignment.module}`: fill in every "
        "`raise NotImplementedError`. Keep the tags (View > Cell Toolbar > Tags) and the names; "
        "you may add cells, but only tagged cells are graded. Submit this notebook or the .py file."))
    for index, chunk in enumerate(chunks):
        cells += [v4.new_markdown_cell(section) for section in placed[index]]
        cells.append(v4.new_code_cell(chunk, metadata={"tags": [GRADED_TAG]}))
    cells.append(v4.new_markdown_cell(
        "## Check your work\n\n"
        "Save the notebook first (Ctrl-S): the next cell runs the public tests on the graded cells "
        f"as saved on disk, like `autograder check {assignment.alias} {assignment.id}.ipynb` in a terminal."))
    cells.append(v4.new_code_cell(
        "import subprocess, sys\n\n"
        f"check = subprocess.run([sys.executable, \"-m\", \"autograder\", \"check\", \"{assignment.id}\", "
        f"\"{assignment.id}.ipynb\"],\n"
        "                       capture_output=True, text=True)\n"
        "print(check.stdout + check.stderr)"))
    for index, cell in enumerate(cells, start=1):
        cell["id"] = f"{cell['cell_type']}-{index:02d}"
    notebook = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    return nbformat.writes(notebook) + "\n"


def fill_notebook(text: str, source: str) -> str:
    """The release notebook with its graded cells replaced by the chunks of `source` (e.g. the reference)."""
    import nbformat

    notebook = nbformat.reads(text, as_version=4)
    graded = [cell for cell in notebook.cells if GRADED_TAG in cell.metadata.get("tags", [])]
    chunks = module_chunks(source)
    if len(chunks) != len(graded):
        raise ValueError(f"the notebook has {len(graded)} graded cells but the source has {len(chunks)} parts")
    for cell, chunk in zip(graded, chunks):
        cell.source = chunk
    return nbformat.writes(notebook) + "\n"
