"""The language surface a submission may use: an allow-list, checked statically before any code runs.

Student code has full Python in its process, so what it may reach is narrowed: a curated set of
standard-library modules (not importlib, runpy, ctypes, gc, inspect, marshal, types, code, pickle,
subprocess...), only the harmless parts of os and sys, no exec/eval/compile/__import__, no private
(`_`-prefixed) attributes or modules of libraries, no dunder introspection (__globals__, __code__,
__subclasses__, frames), and no getattr/setattr on computed names of library objects. Each refusal is
one line naming the file and line. The same operations are refused at run time by the worker's audit
hook (autograder.runtime.audit), which sees what this scan cannot (computed names, handed-over objects).
"""
from __future__ import annotations

import ast
import sys

from autograder.course.records import Problem
from autograder.runtime.audit import CURATED_STDLIB

# Of os and sys, only these names (os.path entirely).
OS_NAMES = frozenset({"path", "sep", "linesep", "pathsep", "curdir", "pardir", "extsep", "name", "environ", "getenv",
                      "cpu_count", "getcwd", "fspath", "PathLike", "getpid"})
SYS_NAMES = frozenset({"float_info", "int_info", "hash_info", "maxsize", "maxunicode", "version", "version_info",
                       "platform", "byteorder", "stdout", "stderr", "float_repr_style", "getrecursionlimit",
                       "setrecursionlimit", "getsizeof", "exit", "implementation"})
# builtins that compile, execute, import or reach the interpreter's internals.
FORBIDDEN_BUILTINS = {
    "exec": "exec runs code built at run time", "eval": "eval runs code built at run time",
    "compile": "compile builds code at run time", "__import__": "__import__ imports by a computed name",
    "breakpoint": "breakpoint starts a debugger", "input": "input waits for a keyboard",
    "__builtins__": "__builtins__ reaches the interpreter's internals", "__loader__": "__loader__ reaches the importer",
    "__spec__": "__spec__ reaches the importer",
}
# Attributes that reach code objects, frames, globals and class internals, on any object.
INTROSPECTION = frozenset({
    "__globals__", "__code__", "__closure__", "__subclasses__", "__bases__", "__base__", "__mro__", "__builtins__",
    "__loader__", "__spec__", "__import__", "__kwdefaults__", "__defaults__", "__wrapped__", "__getattribute__",
    "f_back", "f_globals", "f_locals", "f_code", "f_builtins", "f_trace", "tb_frame", "tb_next", "gi_frame", "gi_code",
    "cr_frame", "cr_code", "ag_frame", "ag_code", "co_code", "co_consts", "co_names", "func_globals",
})
_ONLY = {"os": "graded code may use only os.path, os.environ, os.getenv and constants such as os.sep",
         "sys": "graded code may use only sys.float_info, sys.maxsize, sys.stdout/stderr and similar constants"}
SURFACE_ENV = "AUTOGRADER_LANGUAGE_SURFACE"   # "open": skip this scan (tests of the run-time layers only)
# Standard-library modules that libraries expose as attributes (np.ctypeslib.ctypes, torch.multiprocessing...).
REACHABLE_MODULES = frozenset({"ctypes", "gc", "importlib", "inspect", "marshal", "pickle", "runpy", "subprocess",
                               "multiprocessing", "types", "code", "codeop", "socket", "shutil", "builtins"})
DYNAMIC_ATTRIBUTE_FUNCTIONS = ("getattr", "setattr", "delattr", "hasattr")
LIBRARY_NAMES = {"torch.library": "torch.library registers kernels in the dispatcher"}


def _top(module: str) -> str:
    return module.split(".", 1)[0]


class _Surface:
    def __init__(self, filename: str, local_modules: set[str]):
        self.filename = filename
        self.local = set(local_modules)
        self.library_aliases: dict[str, str] = {}   # name bound by an import of a library -> dotted module
        self.problems: list[Problem] = []
        self.seen: set[tuple[int, str]] = set()

    def refuse(self, node: ast.AST, reason: str) -> None:
        line = getattr(node, "lineno", 0)
        if (line, reason) not in self.seen:
            self.seen.add((line, reason))
            self.problems.append(Problem(f"{self.filename}, line {line}: {reason}", True, line))

    # ------------------------------------------------------------ imports
    def _module(self, node: ast.AST, module: str) -> None:
        top = _top(module)
        if top in self.local:
            return
        parts = module.split(".")
        private = [p for p in parts if p.startswith("_") and p != "__future__"]
        if private:
            self.refuse(node, f"imports {module}: private modules of libraries ({private[0]}) are not part of "
                              "what graded code may use")
        elif top in sys.stdlib_module_names and top not in CURATED_STDLIB:
            self.refuse(node, f"imports {module}: graded code may not use the standard library's {top} "
                              "(only a curated set: math, itertools, functools, collections, dataclasses, typing...)")
        for name, allowed in (("os", OS_NAMES), ("sys", SYS_NAMES)):
            if top == name and len(parts) > 1 and parts[1] not in allowed:
                self.refuse(node, f"imports {module}: {_ONLY[name]}")
        for dotted, reason in LIBRARY_NAMES.items():
            if module == dotted or module.startswith(dotted + "."):
                self.refuse(node, f"imports {module}: {reason}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module(node, alias.name)
            if _top(alias.name) not in self.local:
                self.library_aliases[alias.asname or _top(alias.name)] = alias.name if alias.asname else _top(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            return
        base = node.module or ""
        self._module(node, base)
        for alias in node.names:
            if alias.name == "*":
                continue
            self._module(node, f"{base}.{alias.name}")
            if _top(base) not in self.local:
                self.library_aliases[alias.asname or alias.name] = f"{base}.{alias.name}"

    # ------------------------------------------------------------ names and attributes
    def _library_root(self, node: ast.AST) -> str | None:
        """The dotted library path `node` starts from (np.linalg -> numpy.linalg), or None."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.library_aliases:
            return ".".join([self.library_aliases[node.id], *reversed(parts)])
        return None

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_BUILTINS and node.id not in self.library_aliases:
            self.refuse(node, f"uses {node.id}: {FORBIDDEN_BUILTINS[node.id]}, which graded code may not do")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = node.attr
        if name in INTROSPECTION:
            self.refuse(node, f"uses .{name}: introspection of code, frames or class internals is not allowed "
                              "in graded code")
        else:
            root = self._library_root(node.value)
            if root is not None and name in REACHABLE_MODULES:
                self.refuse(node, f"uses {root}.{name}: the standard library's {name} reached through a library is "
                                  "not part of what graded code may use")
            elif root is not None and root.split(".")[-1] in ("os", "sys") and root != _top(root) and \
                    name not in (OS_NAMES if root.endswith("os") else SYS_NAMES):
                self.refuse(node, f"uses {root}.{name}: {_ONLY[root.split('.')[-1]]}")
            elif root is not None:
                top = _top(root)
                if name.startswith("_") and not (name.startswith("__") and name.endswith("__") and name in
                                                 ("__name__", "__version__", "__doc__", "__class__")):
                    self.refuse(node, f"uses {root}.{name}: private attributes of libraries are not part of what "
                                      "graded code may use")
                elif top == "os" and root == "os" and name not in OS_NAMES:
                    self.refuse(node, f"uses os.{name}: {_ONLY['os']}")
                elif top == "sys" and root == "sys" and name not in SYS_NAMES:
                    self.refuse(node, f"uses sys.{name}: {_ONLY['sys']}")
                for dotted, reason in LIBRARY_NAMES.items():
                    if f"{root}.{name}" == dotted:
                        self.refuse(node, f"uses {dotted}: {reason}")

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in DYNAMIC_ATTRIBUTE_FUNCTIONS and node.args:
            target = node.args[0]
            root = self._library_root(target)
            name = node.args[1] if len(node.args) > 1 else None
            constant = isinstance(name, ast.Constant) and isinstance(name.value, str)
            if root is not None and not constant:
                self.refuse(node, f"{node.func.id}({root}, <computed name>): reaching library attributes by "
                                  "computed names is not allowed in graded code; name the attribute")
            elif constant and name.value in INTROSPECTION:
                self.refuse(node, f"{node.func.id}(..., {name.value!r}): introspection is not allowed in graded code")
            elif root is not None and constant and name.value.startswith("_"):
                self.refuse(node, f"{node.func.id}({root}, {name.value!r}): private attributes of libraries are not "
                                  "part of what graded code may use")
        if isinstance(node.func, ast.Name) and node.func.id == "vars" and node.args and \
                self._library_root(node.args[0]) is not None:
            self.refuse(node, "vars(<library>): reaching library attributes by computed names is not allowed")


def surface_problems(tree: ast.AST, filename: str, local_modules: set[str] = frozenset()) -> list[Problem]:
    """Fatal findings: each use of the language outside the allow-list, one line naming its line.

    AUTOGRADER_LANGUAGE_SURFACE=open skips this scan (the run-time audit hook stays): for testing
    the layers below it, or a course's emergency while an honest idiom is being added to the list."""
    import os

    if os.environ.get(SURFACE_ENV, "").strip().lower() == "open":
        return []
    visitor = _Surface(filename, set(local_modules))
    nodes = list(ast.walk(tree))
    for node in nodes:  # imports first, wherever they are: aliases bound inside functions count too
        if isinstance(node, ast.Import):
            visitor.visit_Import(node)
        elif isinstance(node, ast.ImportFrom):
            visitor.visit_ImportFrom(node)
    for node in nodes:
        if isinstance(node, ast.Name):
            visitor.visit_Name(node)
        elif isinstance(node, ast.Attribute):
            visitor.visit_Attribute(node)
        elif isinstance(node, ast.Call):
            visitor.visit_Call(node)
    return sorted(visitor.problems, key=lambda p: p.line or 0)
