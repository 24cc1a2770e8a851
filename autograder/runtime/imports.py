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
        self.any = "*" in allowed
        self.stdlib = "stdlib" in allowed
        self.allowed = {name.split(".")[0] for name in allowed if name not in ("*", "stdlib")}
        self.local = {name[:-3] for name in os.listdir(submission_dir) if name.endswith(".py")}
        self.forbidden = tuple(forbidden)
        self.submission_dir = os.path.join(submission_dir, "")
        self.assignment = assignment

    def find_spec(self, fullname, path=None, target=None):
        if not _importer_file().startswith(self.submission_dir):
            return None
        if any(fullname == name or fullname.startswith(name + ".") for name in self.forbidden):
            raise ForbiddenImportError(f"importing {fullname} is forbidden in {self.assignment}")
        top = fullname.split(".")[0]
        if self.any or top in self.allowed | self.local or (self.stdlib and top in sys.stdlib_module_names):
            return None
        allowed = sorted(self.allowed) + (["the standard library"] if self.stdlib else [])
        raise ForbiddenImportError(f"importing {fullname} is not allowed in {self.assignment} "
                                   f"(allowed: {', '.join(allowed)})")


def install(allowed: list[str], forbidden: list[str], submission_dir: str, assignment: str) -> None:
    sys.meta_path.insert(0, AllowedImports(allowed, forbidden, submission_dir, assignment))
