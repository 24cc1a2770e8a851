"""An audit hook installed in the worker before the submission is imported (it cannot be removed).

Student code has full Python in its process, so what the static scan refuses must also be refused
at run time, however it is reached (computed names, library functions handed around): compiling
or executing code (exec, eval, compile, re-executing a library module's source), reading or
replacing code objects and frames, walking the garbage collector, foreign functions (ctypes),
tracing, and starting processes or signalling them. Only events triggered by the submission's
own code are refused: the immediate Python caller is a file of the submission, or code compiled
at run time ("<string>"), never a library doing its own work (dataclasses and namedtuple compile
code on an honest student's behalf). Each refusal is one sentence naming the student's line.
"""
from __future__ import annotations

import builtins
import sys

# Events refused when the submission's code triggers them, with what the student reads.
REFUSED = {
    "compile": "compiling code at run time (compile, exec or eval of text)",
    "exec": "executing code at run time (exec or eval)",
    "code.__new__": "building code objects",
    "function.__new__": "building functions from code objects",
    "object.__getattr__": "reading code objects or frames (__code__, tb_frame, gi_frame...)",
    "sys._getframe": "inspecting frames",
    "sys._current_frames": "inspecting frames",
    "sys.settrace": "tracing",
    "sys.setprofile": "profiling hooks",
    "sys.monitoring.register_callback": "monitoring hooks",
    "gc.get_objects": "walking the garbage collector",
    "gc.get_referrers": "walking the garbage collector",
    "gc.get_referents": "walking the garbage collector",
    "marshal.loads": "loading marshalled code",
    "marshal.load": "loading marshalled code",
    "pickle.find_class": "unpickling objects",
    "os.system": "running shell commands",
    "os.exec": "replacing the process",
    "os.posix_spawn": "starting processes",
    "os.spawn": "starting processes",
    "os.fork": "starting processes",
    "os.forkpty": "starting processes",
    "subprocess.Popen": "starting processes",
    "os.kill": "signalling processes",
    "os.killpg": "signalling processes",
    "signal.pthread_kill": "signalling threads",
    "ctypes.dlopen": "loading foreign libraries (ctypes)",
    "ctypes.dlsym": "foreign functions (ctypes)",
    "ctypes.dlsym/handle": "foreign functions (ctypes)",
    "ctypes.cdata": "raw memory (ctypes)",
    "ctypes.cdata/buffer": "raw memory (ctypes)",
    "ctypes.addressof": "raw memory (ctypes)",
    "ctypes.call_function": "foreign functions (ctypes)",
    "ctypes.string_at": "raw memory (ctypes)",
    "ctypes.wstring_at": "raw memory (ctypes)",
    "ctypes.get_errno": "foreign functions (ctypes)",
    "ctypes.set_errno": "foreign functions (ctypes)",
    "ctypes.PyObj_FromPtr": "raw memory (ctypes)",
    "cpython.PyInterpreterState_New": "new interpreters",
    "cpython.run_command": "running code",
    "cpython.run_file": "running code",
    "cpython.run_module": "running code",
    "cpython.run_stdin": "running code",
    "mmap.__new__": "memory maps",
    "object.__setattr__": "replacing code objects of functions",
    "object.__delattr__": "replacing code objects of functions",
    "sys.addaudithook": None,  # allowed: adding a hook removes nothing
}
IMPORTLIB_DIR = __import__("os").path.dirname(__import__("importlib").__file__) + "/"
# Standard-library modules graded code may import (the static scan, autograder.pipeline.surface, uses
# the same list); a first import of any other from the submission's code is refused here too.
CURATED_STDLIB = frozenset({
    "__future__", "abc", "array", "bisect", "builtins", "cmath", "collections", "colorsys", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "decimal", "difflib", "enum", "errno", "fractions", "functools", "hashlib",
    "heapq", "io", "itertools", "json", "keyword", "logging", "math", "numbers", "operator", "os", "pprint", "queue",
    "random", "re", "reprlib", "statistics", "string", "struct", "sys", "textwrap", "time", "traceback", "typing",
    "unicodedata", "uuid", "warnings", "weakref", "zlib",
})
# Loaded by the runtime or the libraries before the submission; dropped from sys.modules so that the
# submission's own `import ctypes` is a first import again, which the hook sees and refuses (the
# libraries keep their references).
EVICTED = ("ctypes", "gc", "marshal", "runpy", "code", "codeop", "subprocess", "multiprocessing", "inspect",
           "ctypes.util", "_ctypes")   # not pickle: its only danger, unpickling, is an audited event (refused)
FUNCTION_CODE_ATTRIBUTES = frozenset({"__code__", "__globals__", "__closure__", "__defaults__", "__kwdefaults__"})


class RefusedOperation(RuntimeError):
    """Student code did something graded code may not do (see autograder.runtime.audit)."""


builtins.RefusedOperation = RefusedOperation  # type: ignore[attr-defined]  (found from any module)


class _Hook:
    def __init__(self, submission_dir: str, runtime_dir: str):
        self.submission = submission_dir.rstrip("/") + "/"
        self.runtime = runtime_dir.rstrip("/") + "/"
        self.busy = False
        self.refused = 0
        self.importing: set[str] = set()   # modules announced by an "import" event, not yet executed

    def _student_line(self, frame, through_imports: bool) -> str | None:
        """'file.py, line N' if `frame` (the event's immediate Python caller) is the student's, else None.

        `through_imports`: the import machinery acts for whoever called it (an `exec` of module code
        answers to the code that imported or reloaded it); its other events (reading .pyc files) are its own.
        """
        while through_imports and frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                                         or frame.f_code.co_filename.startswith(IMPORTLIB_DIR)):
            frame = frame.f_back
        if frame is None:
            return None
        filename = frame.f_code.co_filename
        if filename.startswith(self.submission):
            return f"{filename[len(self.submission):]}, line {frame.f_lineno}"
        if filename.startswith("<") and not filename.startswith("<frozen"):
            # code compiled at run time: whoever compiled it answers for it (a library's generated
            # dataclass/namedtuple methods never trigger these events themselves)
            return f"code compiled at run time ({filename[:40]}), line {frame.f_lineno}"
        return None

    def _first_import(self, code) -> bool:
        """An `exec` of a module's code as it is imported for the first time (not a reload: a reload
        executes a module's code again without the "import" event that precedes a first import)."""
        if getattr(code, "co_name", None) != "<module>":
            return False
        filename = getattr(code, "co_filename", "")
        for name in list(self.importing):
            module = sys.modules.get(name)
            if module is not None and getattr(module, "__file__", None) == filename:
                self.importing.discard(name)
                return True
        return False

    def __call__(self, event: str, args: tuple) -> None:
        if event == "import":
            if not args or type(args[0]) is not str:
                return
            top = args[0].split(".", 1)[0]
            if top in sys.stdlib_module_names and top not in CURATED_STDLIB and not self.busy:
                self.busy = True
                try:
                    where = self._student_line(sys._getframe(1), through_imports=True)
                finally:
                    self.busy = False
                if where is not None:
                    self.refused += 1
                    raise RefusedOperation(f"importing {args[0]} is not allowed in graded code ({where})")
            if len(self.importing) < 10000:
                self.importing.add(args[0])
            return
        if event not in REFUSED and not event.startswith(("ctypes.", "os.exec", "os.spawn")):
            return
        if self.busy or REFUSED.get(event, "") is None:
            return
        if event in ("object.__setattr__", "object.__delattr__") and (len(args) < 2 or args[1] not in FUNCTION_CODE_ATTRIBUTES):
            return  # cheap exit before looking at frames: classes' attributes are set all the time
        self.busy = True
        try:
            where = self._student_line(sys._getframe(1), through_imports=event == "exec")
            if where is None:
                return
            if event == "exec" and args and self._first_import(args[0]):
                return  # `import helper` of the submission's own module, or a library's first import
            what = REFUSED.get(event) or f"the operation {event}"
            self.refused += 1
            raise RefusedOperation(f"{what} is not allowed in graded code ({where})")
        finally:
            self.busy = False


def install(submission_dir: str) -> None:
    """Install the hook for the rest of this process's life (audit hooks cannot be removed)."""
    import os

    for name in EVICTED:
        sys.modules.pop(name, None)
    sys.addaudithook(_Hook(submission_dir, os.path.dirname(os.path.abspath(__file__))))
