"""Every resource has a cap charged to the submission (issue 10, items 5, 6 and 10).

5: every writable place of the worker is one size- and inode-capped tmpfs: filling it fails in the
   worker, the host disk is untouched, and cleanup survives what is left.
6: bytes across the boundary are capped (see test_whose_fault), and the trusted per-submission process
   has a memory cap of its own: exhausting it fails that test, it is not a grader-error.
10: a seccomp filter denies namespaces, mount, ptrace, keyctl, bpf, perf_event_open...
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.course import records
from autograder.course.model import Limits
from autograder.sandbox.cleanup import tree_size
from autograder.sandbox.isolation import _candidate_modes, _detect
from autograder.sandbox.remote import StudentModule
from autograder.sandbox.session import CallLimits, Session
from autograder.sandbox.worker import WorkerSpec

ISOLATED = _detect(tuple(_candidate_modes())).mode != "none"
needs_namespaces = pytest.mark.skipif(not ISOLATED, reason="this machine allows no mount namespace: no tmpfs scratch")

FILLER = '''
import errno
import os

def fill(where, chunk_mb=16, limit_mb=2048):
    """Write files of chunk_mb under `where` until the file system refuses; MiB written and the error."""
    written, index = 0, 0
    block = b"x" * (1 << 20)
    try:
        while written < limit_mb:
            with open(os.path.join(where, f"f{index}"), "wb") as stream:
                for _ in range(chunk_mb):
                    stream.write(block)
                    written += 1
            index += 1
    except OSError as error:
        return written, errno.errorcode.get(error.errno, str(error.errno))
    return written, "no error"

def many_files(where, limit=100000):
    count = 0
    try:
        while count < limit:
            os.mkdir(os.path.join(where, f"d{count}"))
            count += 1
    except OSError as error:
        return count, errno.errorcode.get(error.errno, str(error.errno))
    return count, "no error"

def deep_tree(depth):
    path = "deep"
    for _ in range(depth):
        os.mkdir(path)
        os.chmod(path, 0o700)
        path = os.path.join(path, "d")
    os.chmod("deep", 0)
    return depth

def syscall(name, *args):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    result = getattr(libc, name)(*args)
    return result, ctypes.get_errno()
'''


def _session(tmp_path: Path, limits: Limits = Limits(scratch_mb=64, scratch_inodes=512), **spec) -> Session:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "hostile.py").write_text(textwrap.dedent(FILLER))
    worker_spec = WorkerSpec(tmp_path / "sub", "hostile", zygote=None, limits=limits, **spec)
    session = Session(worker_spec, CallLimits(60, 120))
    session.begin_test()
    return session


@needs_namespaces
@pytest.mark.parametrize("where", [".", "/tmp", "/dev/shm"])
def test_writable_places_share_one_capped_scratch(tmp_path, where):
    session = _session(tmp_path)
    try:
        student = StudentModule(session)
        written, error = student.fill(where)
        assert error == "ENOSPC" and written <= 64, (written, error)
        host_bytes, _ = tree_size(session.worker.root)
        assert host_bytes < 1 << 20, host_bytes  # nothing reached the host disk
        assert session.isolation["scratch_capped"] is True
    finally:
        session.close()


@needs_namespaces
def test_inodes_are_capped_and_scratch_is_shared(tmp_path):
    session = _session(tmp_path)
    try:
        student = StudentModule(session)
        count, error = student.many_files("/tmp")
        assert error == "ENOSPC" and count <= 512, (count, error)
        assert student.many_files(".")[0] <= 5  # the same scratch: /tmp used it up
    finally:
        session.close()


def test_cleanup_survives_a_locked_deep_tree(tmp_path):
    session = _session(tmp_path)
    student = StudentModule(session)
    assert student.deep_tree(300) == 300
    root = session.worker.root
    session.close()
    assert not root.exists()


@pytest.mark.parametrize("call, args", [
    ("unshare", (0x10000000,)),            # CLONE_NEWUSER: the observed escape hatch
    ("unshare", (0x40000000,)),            # CLONE_NEWNET
    ("mount", (b"none", b"/tmp", b"tmpfs", 0, None)),
    ("ptrace", (16, 1, 0, 0)),             # PTRACE_ATTACH to pid 1
    ("syscall", (250, 0, -3, 0, 0, 0)),    # keyctl(KEYCTL_GET_KEYRING_ID, session keyring) (x86-64)
    ("syscall", (321, 0, 0, 0)),           # bpf (x86-64)
    ("syscall", (298, 0, 0, -1, -1, 0)),   # perf_event_open (x86-64)
])
def test_seccomp_denies_dangerous_system_calls(tmp_path, call, args):
    import platform

    if call == "syscall" and platform.machine() != "x86_64":
        pytest.skip("syscall numbers are x86-64's")
    session = _session(tmp_path, audit_hook=False)  # the audit hook refuses ctypes first: test the layer below
    try:
        student = StudentModule(session)
        result, error = student.syscall(call, *args)
        assert session.isolation.get("seccomp") is True, session.isolation.get("notes")
        assert result == -1 and error == 1, (result, error)  # EPERM
    finally:
        session.close()


def test_trusted_process_memory_cap_fails_the_test_not_the_batch():
    """The cap of the trusted pytest process: a MemoryError there is the submission's failure."""
    code = textwrap.dedent('''
        import numpy as np
        from autograder.sandbox.resources import limit_trusted_memory
        from autograder.harness.outcomes import classify
        assert limit_trusted_memory(256)
        try:
            kept = [np.ones(32 << 20) for _ in range(4)]  # 1 GiB held by the trusted side
        except MemoryError as error:
            print(classify(error, "call")[0])
    ''')
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.stdout.strip() == records.FAILED, completed.stdout + completed.stderr


def test_the_audit_hook_refuses_ctypes_above_seccomp(tmp_path):
    session = _session(tmp_path)
    try:
        from autograder.sandbox.errors import StudentError

        with pytest.raises(StudentError, match="ctypes"):
            StudentModule(session).syscall("unshare", 0x10000000)
    finally:
        session.close()


def test_flooded_output_is_truncated():
    """A worker that floods stdout and stderr: the grader keeps the first and last output_kb, no more."""
    flood = Path(__file__).resolve().parents[1] / "fixtures" / "hostile" / "flood_stdout"
    session = Session(WorkerSpec(flood, "toy", zygote=None, limits=Limits(output_kb=64)), CallLimits(2, 10))
    session.begin_test()
    try:
        from autograder.sandbox.errors import StudentTimeout

        with pytest.raises(StudentTimeout):
            StudentModule(session).apply(lambda x: x, 1)
    finally:
        session.close()
    assert "bytes of output dropped" in session.collected_output and len(session.collected_output) < 300_000
