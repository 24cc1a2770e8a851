"""What a worker process starts from: its environment, its bootstrap line and a private copy
of the runtime package (the only part of the grader a worker ever imports)."""
from __future__ import annotations

import shutil
from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"


ISOLATION_ENV = "AUTOGRADER_ISOLATION"        # the batch's probed plan, inherited by its children


MODE_ENV = "AUTOGRADER_ISOLATION_MODE"        # force a mode: root, userns or none


ZYGOTE_ENV = "AUTOGRADER_ZYGOTE"              # the warm pool's socket, when one serves this process


# glibc returns large blocks to the kernel at once by default; every tensor or array that crosses
# then costs fresh page faults (on this VM ~10x the copy itself). Keep them in the heap instead.
MALLOC_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(128 << 20),
                      "MALLOC_TOP_PAD_": str(16 << 20)}


# Both sides of the boundary run with one BLAS/OpenMP thread (the warm server and the zygote fork,
# which is only safe single-threaded), fixed hashing, no bytecode files and
# the heap settings above.
SHARED_ENVIRONMENT = {**MALLOC_ENVIRONMENT, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                      "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}

WORKER_ENVIRONMENT = {**SHARED_ENVIRONMENT,
                      "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}


def trusted_environment(base: dict[str, str], isolation_plan: str, **more: str) -> dict[str, str]:
    """The environment of a trusted pytest run (warm server or fresh): `base` (the grader's own) with
    SHARED_ENVIRONMENT (the warm server forks its runs, which is only safe single-threaded) and the
    batch's isolation plan."""
    return {**base, **SHARED_ENVIRONMENT, ISOLATION_ENV: isolation_plan, **more}


BOOTSTRAP = ("import sys; sys.path.insert(0, sys.argv[2]); sys.argv[2:] = []; "
             "from _autograder_runtime.{module} import main; main()")


def runtime_copy(root: Path) -> Path:
    """A private copy of the runtime package: the worker imports nothing else of the grader."""
    runtime = root / "runtime" / "_autograder_runtime"
    shutil.copytree(RUNTIME_DIR, runtime, ignore=shutil.ignore_patterns("__pycache__"))
    return root / "runtime"
