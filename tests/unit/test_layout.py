"""The layout is the architecture: the facts the README's layout section states, checked."""
import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "autograder"
SUBPACKAGES = ("course", "pipeline", "harness", "sandbox", "runtime", "commands")
VERBS = ("check", "submit", "grade", "report", "release", "verify", "export")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def _imports(path: Path, name: str) -> set[str]:
    """Every autograder module `path` imports, at module level or inside a function."""
    found = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and getattr(block.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue  # annotations only: never executed
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    modules = _modules()
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    return {name: _imports(path, name) for name, path in _modules().items()}


def test_the_package_has_one_subpackage_per_stage_of_the_story():
    present = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert present == set(SUBPACKAGES)
    top_level = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top_level == ["__init__.py", "__main__.py", "cli.py", "errors.py"]


def test_every_package_says_what_it_holds():
    for init in PACKAGE.rglob("__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} has no docstring"


def test_no_import_circle_lazy_or_not():
    graph = _graph()
    # A package's __init__ re-exporting from its own modules is not a circle back into it.
    def edges(name):
        return {m for m in graph[name] if not (name.startswith(m + ".") and _modules()[m].name == "__init__.py")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name):
        state[name] = 1
        stack.append(name)
        for other in edges(name):
            if state.get(other) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(other):] + [other]))
            if other not in state:
                visit(other)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_a_verb_never_imports_another_verb():
    graph = _graph()
    for name, imported in graph.items():
        if not name.startswith("autograder.commands."):
            continue
        verb = name.split(".")[2]
        others = {m for m in imported if m.startswith("autograder.commands.") and m.split(".")[2] != verb}
        assert not others, f"{name} imports the verb(s) {sorted(others)}: move what they share to pipeline/ or course/"


def test_lower_layers_never_import_the_verbs_or_the_cli():
    for name, imported in _graph().items():
        if name.startswith(("autograder.commands", "autograder.cli", "autograder.__main__")):
            continue
        bad = {m for m in imported if m.startswith(("autograder.commands", "autograder.cli"))}
        assert not bad, f"{name} imports {sorted(bad)}"


def test_the_worker_runtime_imports_nothing_else_of_the_grader():
    for path in (PACKAGE / "runtime").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level:
                assert not (node.module or "").startswith("autograder"), f"{path}: {node.module}"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("autograder") for a in node.names), path


def test_modules_stay_small():
    big = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_help_names_every_verb_and_the_layout():
    shown = subprocess.run([sys.executable, "-m", "autograder", "--help"], capture_output=True, text=True,
                           cwd=PACKAGE.parent, timeout=60).stdout
    for verb in VERBS:
        assert verb in shown
    for subpackage in SUBPACKAGES:
        assert f"{subpackage}/" in shown, f"--help does not describe {subpackage}/"
    readme = (PACKAGE.parent / "README.md").read_text()
    layout = readme[readme.index("## Layout"):].split("\n## ", 1)[0]
    for subpackage in SUBPACKAGES:
        assert f"  {subpackage}/" in layout, f"README's layout section does not name autograder/{subpackage}/"
