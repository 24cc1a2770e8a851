"""Static checks of a submission's module: an AST scan before any student code runs.

Fatal findings (syntax errors, imports outside the assignment's allowed set, forbidden
imports or calls) reject the submission with one line each; missing required names are
feedback, and their tests fail on their own.
"""
from __future__ import annotations

import ast
from pathlib import Path

from autograder.course.model import Assignment
from autograder.course.records import Problem
from autograder.pipeline.dtype_rule import describe_rule, scan_dtypes
from autograder.pipeline.surface import surface_problems
from autograder.runtime.imports import forbidden_entry, import_allowed

DYNAMIC_IMPORTERS = {"__import__", "importlib.import_module", "importlib.__import__"}


def _top(module: str) -> str:
    return module.split(".", 1)[0]


class _Scanner(ast.NodeVisitor):
    """Collects imports (with their aliases) and dotted names used in the module."""

    def __init__(self) -> None:
        self.imports: list[tuple[str, int]] = []
        self.aliases: dict[str, str] = {}
        self.uses: list[tuple[str, int]] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.imports.append((alias.name, node.lineno))
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                self.aliases.setdefault(_top(alias.name), _top(alias.name))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:  # a relative import of the submission's own files
            return
        base = node.module or ""
        self.imports.append((base, node.lineno))
        for alias in node.names:
            full = f"{base}.{alias.name}" if alias.name != "*" else base
            self.imports.append((full, node.lineno))
            self.aliases[alias.asname or alias.name] = full

    def _dotted(self, node: ast.AST) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            parts.append(node.id)
            return ".".join(reversed(parts))
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self._dotted(node)
        if dotted is not None:
            self.uses.append((dotted, node.lineno))
        else:
            self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self.uses.append((node.id, node.lineno))

    def visit_Call(self, node: ast.Call) -> None:
        name = self._dotted(node.func)
        resolved = self.resolve(name) if name else None
        if resolved in DYNAMIC_IMPORTERS and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            self.imports.append((node.args[0].value, node.lineno))
        self.generic_visit(node)

    def resolve(self, dotted: str) -> str:
        head, _, rest = dotted.partition(".")
        if head in self.aliases:
            return self.aliases[head] + ("." + rest if rest else "")
        return dotted


def defined_names(tree: ast.Module) -> set[str]:
    """The names a module defines at its top level: functions, classes, assigned and annotated
    names (with a value), and imports. The one rule for "defines a required name" (scan, notebooks)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))  # a, (b, c) = ...
        elif isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*")
    return names


def scan_source(source: str, assignment: Assignment, *, filename: str, local_modules: set[str] = frozenset()) -> list[Problem]:
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as error:
        return [Problem(f"{filename}, line {error.lineno}: SyntaxError: {error.msg}", fatal=True, line=error.lineno)]
    except ValueError as error:  # null bytes
        return [Problem(f"{filename}: cannot be parsed: {error}", fatal=True)]
    scanner = _Scanner()
    scanner.visit(tree)
    problems: list[Problem] = surface_problems(tree, filename, set(local_modules))  # the allow-list (surface.py)
    seen: set[str] = set()
    for module, line in scanner.imports:
        if not module:
            continue
        forbidden = forbidden_entry(module, assignment.forbidden.imports)
        if forbidden and forbidden not in seen:
            seen.add(forbidden)
            problems.append(Problem(f"{filename}, line {line}: imports {module}, which is forbidden in {assignment.id}", True, line))
        elif not import_allowed(module, assignment.allowed_imports, local_modules) and _top(module) not in seen:
            seen.add(_top(module))
            allowed = ", ".join(a if a != "stdlib" else "the standard library" for a in assignment.allowed_imports)
            problems.append(Problem(f"{filename}, line {line}: imports {module}; {assignment.id} allows only {allowed}", True, line))
    for dotted, line in scanner.uses:
        resolved = scanner.resolve(dotted)
        if resolved == dotted and _top(dotted) not in scanner.aliases:
            continue  # a local name that merely looks like a library function
        forbidden = forbidden_entry(resolved, assignment.forbidden.calls)
        if forbidden and forbidden not in seen:
            seen.add(forbidden)
            problems.append(Problem(f"{filename}, line {line}: uses {resolved}, which is forbidden in {assignment.id}", True, line))
    if filename == assignment.module:
        for finding in scan_dtypes(source, assignment.forbidden.dtypes, filename=filename):
            problems.append(Problem(f"{filename}, line {finding.line}: {finding.message}; "
                                    f"{describe_rule(assignment.forbidden.dtypes)}", True, finding.line))
    defined = defined_names(tree)
    missing = [name for name in assignment.required if name not in defined]
    if missing:
        problems.append(Problem(f"{filename}: does not define {', '.join(missing)}; their tests will fail", False))
    return problems


def check_submission(directory: Path, assignment: Assignment) -> list[Problem]:
    """Scan the module and any helper .py files submitted beside it."""
    local = {p.stem for p in directory.glob("*.py")}
    problems = []
    for path in sorted(directory.rglob("*.py")):
        relative = path.relative_to(directory).as_posix()
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(Problem(f"{relative}: not UTF-8 text", fatal=True))
            continue
        found = scan_source(source, assignment, filename=relative, local_modules=local)
        if relative != assignment.module:
            found = [p for p in found if p.fatal]  # required names live in the module only
        problems.extend(found)
    return problems
