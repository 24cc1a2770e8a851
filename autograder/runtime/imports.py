"""Refuse, at run time, imports that student code makes outside the assignment's allowed set.

The static scan sees `import torch`; this sees `importlib.import_module("to" + "rch")` and
`__import__(name)`. Only imports asked for by the submission's own files are judged: libraries
loading their own dependencies are left alone. A module already loaded (the preloaded
libraries and what they imported) comes from sys.modules without consulting any finder.
"""
from __future__ import annotations

import os
import sys
from importlib.abc import MetaPathFinder


class ForbiddenImportError(ImportError):
    """Student code imported a module its assignment does not allow."""


# The import policy, one copy: the static scan (autograder.pipeline.scan) judges the
# submission's `import` statements with these two functions before it runs, the finder
# below judges what actually gets imported while it runs.

def forbidden_entry(dotted: str, forbidden) -> str | None:
    """The entry of `forbidden` that the module or call `dotted` is or lies under
    (`torch.optim` covers `torch.optim.adam`), else None."""
    for name in forbidden:
        if dotted == name or dotted.startswith(name + "."):
            return name
    return None


def import_allowed(module: str, allowed, local_modules) -> bool:
    """Whether the allowed-imports list lets a submission import `module`: `*` allows
    anything, `stdlib` the standard library, any other entry its whole top-level package
    (importing `torch.nn` imports `torch`), and the submission's own modules are always allowed."""
    top = module.split(".", 1)[0]
    if "*" in allowed or top in local_modules:
        return True
    if "stdlib" in allowed and top in sys.stdlib_module_names:
        return True
    return any(top == name.split(".", 1)[0] for name in allowed if name != "stdlib")


def _importer_file() -> str:
    """The file of the first frame outside the import machinery: who asked for the import."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        machinery = filename == __file__ or filename.startswith("<frozen") or f"{os.sep}importlib{os.sep}" in filename
        if not machinery:
            return filename
        frame = frame.f_back
    return ""


class AllowedImports(MetaPathFinder):
    """A meta-path finder that raises for modules the submission may not import."""

    def __init__(self, allowed: list[str], forbidden: list[str], submission_dir: str, assignment: str):
        self.allowed = tuple(allowed)
        self.local = {name[:-3] for name in os.listdir(submission_dir) if name.endswith(".py")}
        self.forbidden = tuple(forbidden)
        self.submission_dir = os.path.join(submission_dir, "")
        self.assignment = assignment

    def find_spec(self, fullname, path=None, target=None):
        if not _importer_file().startswith(self.submission_dir):
            return None
        if forbidden_entry(fullname, self.forbidden):
            raise ForbiddenImportError(f"importing {fullname} is forbidden in {self.assignment}")
        if import_allowed(fullname, self.allowed, self.local):
            return None
        allowed = (sorted({name.split(".")[0] for name in self.allowed if name != "stdlib"})
                   + (["the standard library"] if "stdlib" in self.allowed else []))
        raise ForbiddenImportError(f"importing {fullname} is not allowed in {self.assignment} "
                                   f"(allowed: {', '.join(allowed)})")


def install(allowed: list[str], forbidden: list[str], submission_dir: str, assignment: str) -> None:
    sys.meta_path.insert(0, AllowedImports(allowed, forbidden, submission_dir, assignment))
