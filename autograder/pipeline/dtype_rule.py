"""A forbidden-dtype rule scoped to some functions of a module: an AST analysis, no execution.

Some assignments forbid a dtype in part of the module only (a08: round to binary16 with
arithmetic, yet return float16 copies elsewhere). The scope is the named functions plus
every module-level function, lambda or class they reference, transitively. Inside it the
scan looks at code, never at docstrings, comments or the names of local variables, and
refuses, with file:line:
- an attribute or imported name that is a forbidden dtype (`np.float16`, `x.half()`,
  `from torch import bfloat16 as b`, a module-level alias `F16 = np.float16`);
- a string that names one (`x.astype("float16")`, `"float" + "16"`, a local or
  module-level constant), and a type code (`'e'`, `'<f2'`) passed to a call or used as a key;
- a `struct` call whose format holds the code 'e' or is computed;
- computed access the scan cannot read: `getattr` with a computed name, `vars`, `globals`,
  `__dict__`, `eval`, `exec`, `compile`, `__import__`, `importlib`, `operator.attrgetter`.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

BYTE_ORDER = "<>=|!@"
# Builtins and attributes that reach a name the scan cannot read (a computed attribute, code from a string).
COMPUTED_BUILTINS = {"vars", "globals", "locals", "eval", "exec", "compile", "__import__"}
COMPUTED_ATTRIBUTES = {"__dict__", "__getattribute__", "attrgetter", "methodcaller", "import_module"}
COMPUTED_ACCESS = COMPUTED_BUILTINS | COMPUTED_ATTRIBUTES
STRUCT_CALLS = {"pack", "unpack", "pack_into", "unpack_from", "iter_unpack", "calcsize", "Struct"}


@dataclass(frozen=True)
class DtypeRule:
    """grading.yaml `forbidden.dtypes`: `names` (float16, half, ...), type `codes` (e, f2), `within` functions."""

    names: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    within: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.within and (self.names or self.codes))


@dataclass(frozen=True)
class DtypeFinding:
    line: int
    message: str


def _strip_code(text: str) -> str:
    """'<4e' -> 'e', '>f2' -> 'f2': a type code without byte order or repeat count."""
    text = text.strip().lstrip(BYTE_ORDER)
    return text.lstrip("0123456789")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


class _Module:
    """Module-level facts: definitions, import aliases, string constants, tainted names."""

    def __init__(self, tree: ast.Module, rule: DtypeRule):
        self.rule = rule
        self.definitions: dict[str, ast.AST] = {}
        self.aliases: dict[str, str] = {}
        self.star_from: list[str] = []
        self.strings: dict[str, str] = {}
        self.assignments: dict[str, list[ast.AST]] = {}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.definitions[node.name] = node
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                for alias in node.names:
                    if alias.name == "*":
                        self.star_from.append(node.module or "")
                    else:
                        self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            self.assignments.setdefault(name.id, []).append(node.value)
                            if isinstance(node.value, ast.Lambda):
                                self.definitions[name.id] = node.value
        for name, values in self.assignments.items():
            if len(values) == 1:
                folded = fold_string(values[0], {})
                if folded is not None:
                    self.strings[name] = folded

    def forbidden_name(self, identifier: str) -> bool:
        return identifier in self.rule.names


def fold_string(node: ast.AST, constants: dict[str, str]) -> str | None:
    """The value of a string expression built from constants ('float' + '16', f'{a}16', ''.join([...]))."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = fold_string(node.left, constants), fold_string(node.right, constants)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        text = fold_string(node.left, constants)
        if text is not None and isinstance(node.right, ast.Constant) and isinstance(node.right.value, int):
            return text * node.right.value
        return None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                if value.format_spec is not None or value.conversion not in (-1, 115):
                    return None
                value = value.value
            part = fold_string(value, constants)
            if part is None:
                return None
            parts.append(part)
        return "".join(parts)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
            and len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple))):
        separator = fold_string(node.func.value, constants)
        items = [fold_string(item, constants) for item in node.args[0].elts]
        if separator is not None and all(item is not None for item in items):
            return separator.join(items)
    return None


class _FunctionScan:
    """Findings in one in-scope function (or lambda, or class) body."""

    def __init__(self, module: _Module, node: ast.AST, owner: str, docstrings: set[int]):
        self.module, self.node, self.owner, self.docstrings = module, node, owner, docstrings
        self.findings: list[DtypeFinding] = []
        self.references: set[str] = set()
        self.local_names = self._locals()
        self.constants = dict(module.strings)
        for name, values in self._local_assignments().items():
            self.constants.pop(name, None)
            folded = [fold_string(v, self.constants) for v in values]
            if folded and all(f is not None for f in folded):
                self.constants[name] = folded[-1]

    def _locals(self) -> set[str]:
        names = set()
        for sub in ast.walk(self.node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                names.add(sub.id)
            elif isinstance(sub, ast.arg):
                names.add(sub.arg)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and sub is not self.node:
                names.add(sub.name)
        return names

    def _local_assignments(self) -> dict[str, list[ast.AST]]:
        found: dict[str, list[ast.AST]] = {}
        for sub in ast.walk(self.node):
            if isinstance(sub, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and sub.value is not None:
                targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        found.setdefault(target.id, []).append(sub.value)
        return found

    def add(self, node: ast.AST, message: str) -> None:
        self.findings.append(DtypeFinding(getattr(node, "lineno", 0), f"{message} in {self.owner}"))

    # ---------------------------------------------------------------- checks

    def string_names_dtype(self, text: str) -> bool:
        rule = self.module.rule
        stripped = text.strip()
        for prefix in ("torch.", "numpy.", "np."):
            stripped = stripped.removeprefix(prefix)
        return stripped in rule.names or _strip_code(stripped) in rule.codes

    def run(self) -> list[DtypeFinding]:
        for sub in ast.walk(self.node):
            if isinstance(sub, ast.Attribute):
                self.attribute(sub)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                self.name(sub)
            elif isinstance(sub, ast.Call):
                self.call(sub)
            elif isinstance(sub, ast.Subscript):
                key = fold_string(sub.slice, self.constants)
                if key is not None and self.string_names_dtype(key):
                    self.add(sub, f"looks up the dtype {key!r} by key")
            elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and id(sub) not in self.docstrings:
                stripped = sub.value.strip()
                for prefix in ("torch.", "numpy.", "np."):
                    stripped = stripped.removeprefix(prefix)
                if stripped in self.module.rule.names:
                    self.add(sub, f"names the dtype {sub.value!r}")
        return self.findings

    def attribute(self, node: ast.Attribute) -> None:
        if node.attr in self.module.rule.names:
            self.add(node, f"uses .{node.attr}")
        elif node.attr in COMPUTED_ATTRIBUTES:
            self.add(node, f"uses .{node.attr} (computed access the forbidden-dtype scan cannot read)")

    def name(self, node: ast.Name) -> None:
        identifier = node.id
        if identifier in self.local_names:
            return
        if identifier in self.module.definitions:
            self.references.add(identifier)
            return
        target = self.module.aliases.get(identifier)
        if target is not None:
            last = target.rsplit(".", 1)[-1]
            if last in self.module.rule.names:
                self.add(node, f"uses {identifier} (imported as {target})")
            elif last in COMPUTED_ACCESS or target.split(".")[0] == "importlib":
                self.add(node, f"uses {identifier} ({target}: computed access the forbidden-dtype scan cannot read)")
            return
        if identifier in self.module.assignments:
            if any(_mentions_forbidden(value, self.module) for value in self.module.assignments[identifier]):
                self.add(node, f"uses the module-level name {identifier}, bound to a forbidden dtype")
            return
        if identifier in COMPUTED_BUILTINS:
            self.add(node, f"calls {identifier} (computed access the forbidden-dtype scan cannot read)")
        elif identifier in self.module.rule.names and self.module.star_from:
            self.add(node, f"uses {identifier} (from a star import)")

    def call(self, node: ast.Call) -> None:
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else function.id if isinstance(function, ast.Name) else ""
        resolved = self.module.aliases.get(name, name) if isinstance(function, ast.Name) else name
        if name == "getattr" and len(node.args) >= 2:
            attribute = fold_string(node.args[1], self.constants)
            if attribute is None:
                self.add(node, "calls getattr with a computed name (the forbidden-dtype scan cannot read it)")
            elif attribute in self.module.rule.names or attribute in COMPUTED_ACCESS:
                self.add(node, f"calls getattr(..., {attribute!r})")
            return
        is_struct = resolved.split(".")[-1] in STRUCT_CALLS and (
            _root_module(function, self.module) == "struct" or resolved.startswith("struct."))
        if is_struct and node.args:
            text = fold_string(node.args[0], self.constants)
            if text is None:
                self.add(node, f"calls struct.{name} with a computed format (the forbidden-dtype scan cannot read it)")
            elif any(code in text for code in self.module.rule.codes if len(code) == 1):
                self.add(node, f"calls struct.{name} with the half-precision format code in {text!r}")
            return
        if name == "format":
            return  # format(x, "e") is scientific notation, not a dtype
        for argument in [*node.args, *(k.value for k in node.keywords)]:
            text = fold_string(argument, self.constants)
            if text is not None and self.string_names_dtype(text) and not isinstance(argument, ast.Constant):
                self.add(argument, f"passes the dtype {text!r} to {name or 'a call'}")
            elif isinstance(argument, ast.Constant) and isinstance(argument.value, str) and \
                    _strip_code(argument.value) in self.module.rule.codes:
                self.add(argument, f"passes the type code {argument.value!r} to {name or 'a call'}")


def _root_module(node: ast.AST, module: _Module) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    if isinstance(node, ast.Name):
        return module.aliases.get(node.id, node.id).split(".")[0]
    return ""


def _mentions_forbidden(value: ast.AST, module: _Module, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a module-level value refers to a forbidden dtype (directly or through another such name)."""
    for sub in ast.walk(value):
        if isinstance(sub, ast.Attribute) and sub.attr in module.rule.names:
            return True
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and (
                sub.value.strip() in module.rule.names or _strip_code(sub.value) in module.rule.codes):
            return True
        if isinstance(sub, ast.Name) and sub.id not in seen:
            target = module.aliases.get(sub.id)
            if target is not None and target.rsplit(".", 1)[-1] in module.rule.names:
                return True
            if sub.id in module.assignments and any(
                    _mentions_forbidden(v, module, seen | {sub.id}) for v in module.assignments[sub.id]):
                return True
    return False


def scan_dtypes(source: str, rule: DtypeRule, *, filename: str = "<module>") -> list[DtypeFinding]:
    """Findings of `rule` in `source` (sorted by line; a syntax error yields none: other checks report it)."""
    if not rule:
        return []
    try:
        tree = ast.parse(source, filename=filename)
    except (SyntaxError, ValueError):
        return []
    module = _Module(tree, rule)
    docstrings = _docstring_nodes(tree)
    pending = [name for name in rule.within if name in module.definitions]
    done: set[str] = set()
    findings: list[DtypeFinding] = []
    while pending:
        name = pending.pop()
        if name in done:
            continue
        done.add(name)
        owner = name if name in rule.within else f"{name} (a helper of {', '.join(r for r in rule.within if r in module.definitions)})"
        scan = _FunctionScan(module, module.definitions[name], owner, docstrings)
        findings.extend(scan.run())
        pending.extend(sorted(scan.references - done))
    unique = {(f.line, f.message): f for f in findings}
    return sorted(unique.values(), key=lambda f: (f.line, f.message))


def describe_rule(rule: DtypeRule) -> str:
    forbidden = ", ".join([*rule.names, *(repr(c) for c in rule.codes)])
    return f"{forbidden} are forbidden in {', '.join(rule.within)} and the helpers they call"
