"""Shut the worker in before any student code runs; used alike by fresh and zygote-forked workers.

Modes: "root" (the grader is root: new mount, network, IPC and PID namespaces, a root file
system holding only system libraries, the Python environment and the submission, and a uid of
its own), "userns" (the same through an unprivileged user namespace), "none" (resource limits
and a clean environment only). `isolate` returns the measures in force, or raises
IsolationFailed: the trusted side then reports a grader fault, never a student's zero.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import resource
import shutil
import signal
import socket
import struct
import sys

from .contract import DEFAULT_WORKER_LIMITS

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
CLONE_NEWIPC, CLONE_NEWPID = 0x08000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 1, 38, 24
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine())
SANDBOX = "/sandbox"
SUBMISSION = "/sandbox/submission"
SCRATCH = "/sandbox"                  # the capped tmpfs holding every writable place
WORKER_GID = 65534                    # nogroup
UID_BASE = 2_000_000                  # root mode: uid = UID_BASE + pid, unique per live worker
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "passwd", "group",
             "nsswitch.conf", "hosts", "alternatives", "os-release")
DEVICES = ("null", "zero", "full", "random", "urandom")
MODES = ("root", "userns", "none")

_libc = ctypes.CDLL(None, use_errno=True)


class IsolationFailed(Exception):
    """A measure of the plan could not be applied: the grader's (or machine's) fault."""


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise IsolationFailed(f"{what}: {os.strerror(number)} (errno {errno.errorcode.get(number, number)})")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), f"mount {source} on {target}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as stream:
        stream.write(text)


def python_roots() -> list[str]:
    """Directories holding the interpreter and its packages (the venv), outside the system dirs."""
    roots = []
    for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.dirname(sys.executable))):
        real = os.path.realpath(path)
        if any(real == d or real.startswith(d + "/") for d in ("/usr",)) or real == "/":
            continue
        if not any(real == r or real.startswith(r + "/") for r in roots):
            roots.append(real)
    return roots


def gpu_devices() -> list[str]:
    """NVIDIA device nodes of this machine (the sandbox exposes them; CUDA needs them)."""
    try:
        return sorted("/dev/" + name for name in os.listdir("/dev") if name.startswith("nvidia"))
    except OSError:
        return []


def apply_limits(limits: dict) -> None:
    """Address space (data segment where a GPU is present: CUDA reserves huge address ranges),
    CPU seconds, processes, open files, file size; no core dumps."""
    mb = 1 << 20
    limits = {**DEFAULT_WORKER_LIMITS, **limits}
    memory = "RLIMIT_DATA" if gpu_devices() else "RLIMIT_AS"
    for name, value in ((memory, limits["memory_mb"] * mb), ("RLIMIT_CPU", limits["cpu_seconds"]),
                        ("RLIMIT_NOFILE", limits["open_files"]), ("RLIMIT_FSIZE", limits["file_size_mb"] * mb),
                        ("RLIMIT_NPROC", limits["processes"]), ("RLIMIT_CORE", 0)):
        resource.setrlimit(getattr(resource, name), (value, value))


def _give_to_worker(directory: str, worker_uid: int) -> None:
    """chown the submission's tree to the worker's uid (links themselves, never their targets)."""
    for folder, _, files in os.walk(directory):
        os.chown(folder, worker_uid, WORKER_GID)
        for name in files:
            os.chown(os.path.join(folder, name), worker_uid, WORKER_GID, follow_symlinks=False)


def _become_worker(worker_uid: int) -> None:
    """Leave root for good: no supplementary groups, then gid and uid (real, effective, saved)."""
    os.setgroups([])
    os.setresgid(WORKER_GID, WORKER_GID, WORKER_GID)
    os.setresuid(worker_uid, worker_uid, worker_uid)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # a change of uid clears it: a killed batch leaves no worker


def _loopback_up() -> None:
    """Bring `lo` up in the new network namespace (loopback only: tests may use 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0x1 | 0x8 | 0x40)  # IFF_UP | IFF_LOOPBACK | IFF_RUNNING
        fcntl.ioctl(sock.fileno(), 0x8914, request)                # SIOCSIFFLAGS


def _bind(new_root: str, source: str, *, writable: bool = False, target: str | None = None) -> None:
    target = new_root + (target or source)
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | (0 if writable else MS_RDONLY)
    _mount("none", target, None, flags | (MS_NODEV if not source.startswith("/dev/") else 0))


def _build_root(new_root: str, submission_dir: str, scratch_mb: int, scratch_inodes: int, proc: bool) -> list[str]:
    """A tmpfs root holding only what the worker needs; returns notes."""
    notes = []
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    os.makedirs(new_root, exist_ok=True)
    _mount("tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m,nr_inodes=4096")
    for directory in SYSTEM_DIRS:
        if os.path.islink(directory):
            os.symlink(os.readlink(directory), new_root + directory)
        elif os.path.isdir(directory):
            _bind(new_root, directory)
    os.makedirs(new_root + "/etc", exist_ok=True)
    for name in ETC_FILES:
        source = "/etc/" + name
        if os.path.islink(source) and not os.path.isdir(source):
            os.symlink(os.readlink(source), new_root + source)
        elif os.path.exists(source):
            _bind(new_root, source)
    os.makedirs(new_root + "/dev", exist_ok=True)
    _mount("tmpfs", new_root + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64")
    # Every writable place is one size- and inode-capped tmpfs (the scratch), charged to this worker:
    # the submission's copy, /tmp and /dev/shm are folders of it. Nothing the worker writes reaches a host disk.
    scratch = new_root + SCRATCH
    os.makedirs(scratch, exist_ok=True)
    _mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV,
           f"mode=0755,size={scratch_mb}m,nr_inodes={scratch_inodes}")
    for directory in ("/tmp", "/dev/shm"):  # before the Python roots: a venv may live under /tmp
        inside = scratch + "/" + directory.strip("/").replace("/", "_")
        os.makedirs(inside, exist_ok=True)
        os.chmod(inside, 0o1777)
        os.makedirs(new_root + directory, exist_ok=True)
        _mount(inside, new_root + directory, None, MS_BIND)
        _mount("none", new_root + directory, None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV)
    for root in python_roots():
        _bind(new_root, root)
    for device in DEVICES:
        if os.path.exists("/dev/" + device):
            _bind(new_root, "/dev/" + device, writable=True)
    os.symlink("/proc/self/fd", new_root + "/dev/fd")
    gpus = gpu_devices()
    for device in gpus:
        _bind(new_root, device, writable=True)
    if gpus and os.path.isdir("/sys"):
        _bind(new_root, "/sys")  # CUDA and NVML read the PCI topology here
        notes.append(f"GPU devices exposed: {', '.join(gpus)}")
    shutil.copytree(submission_dir, new_root + SUBMISSION, symlinks=False)  # into the scratch tmpfs
    if proc:
        os.makedirs(new_root + "/proc", exist_ok=True)
        try:
            _mount("proc", new_root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except IsolationFailed as error:
            os.rmdir(new_root + "/proc")
            notes.append(f"no /proc in the sandbox ({error})")
    return notes


def _pivot(new_root: str) -> None:
    os.chdir(new_root)
    if SYS_PIVOT_ROOT is None:
        _check(_libc.chroot(b"."), "chroot")
    else:
        _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
        _check(_libc.umount2(b".", MNT_DETACH), "detach the old root")
    os.chdir("/")


def _drop_capabilities() -> None:
    for capability in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            break
    header = struct.pack("II", 0x20080522, 0)
    data = ctypes.create_string_buffer(24)
    _check(_libc.capset(ctypes.c_char_p(header), data), "drop capabilities")


def _fork_into_pid_namespace() -> None:
    """Fork: the child (pid 1 of the new namespace) goes on; this process mirrors its exit."""
    pid = os.fork()
    if pid == 0:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        return
    for fd in range(3, 1024):  # the channel belongs to the child alone: EOF when it dies
        try:
            os.close(fd)
        except OSError:
            pass
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(70)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code & 0xFF)


def isolate(plan: dict) -> dict:
    """Apply `plan` (mode, paths, limits) to this process; returns the measures in force.

    Runs after the libraries are loaded and before the submission is; in "root" and "userns"
    modes the process forks once (PID namespace) and only the child returns.
    """
    mode = plan.get("mode", "none")
    submission_dir = plan["submission_dir"]
    limits = {**DEFAULT_WORKER_LIMITS, **plan.get("limits", {})}
    measures = {"mode": mode, "scratch_capped": False, "network_namespace": False, "loopback": False, "hidden_paths": False,
                "private_tmp": False, "pid_namespace": False, "ipc_namespace": False,
                "unprivileged_user": False, "process_limit": False, "resource_limits": False, "notes": []}
    if mode not in MODES:
        raise IsolationFailed(f"unknown isolation mode {mode!r} (expected one of {', '.join(MODES)})")
    os.setsid()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if mode in ("root", "userns"):
        uid, gid = os.geteuid(), os.getegid()
        worker_uid = UID_BASE + os.getpid()  # unique while this process (the namespace's parent) lives
        flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID
        if mode == "userns":
            flags |= CLONE_NEWUSER
        if plan.get("join_network"):  # a rank of a group (autograder.sandbox.ranks): the group's namespace, not a new one
            fd = os.open(plan["join_network"], os.O_RDONLY)
            try:
                _check(_libc.setns(fd, CLONE_NEWNET), "join the rank group's network namespace")
            finally:
                os.close(fd)
            flags &= ~CLONE_NEWNET
        _check(_libc.unshare(flags), f"unshare ({mode} mode)")
        if mode == "userns":
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"65534 {uid} 1")
            _write("/proc/self/gid_map", f"65534 {gid} 1")
        _fork_into_pid_namespace()
        try:
            _loopback_up()
            measures["loopback"] = True
        except OSError as error:
            measures["notes"].append(f"loopback not up ({error})")
        measures.update(network_namespace=True, pid_namespace=True, ipc_namespace=True)
        new_root = plan["new_root"]
        measures["notes"] += _build_root(new_root, submission_dir, int(limits["scratch_mb"]),
                                         int(limits["scratch_inodes"]), proc=True)
        measures["scratch_capped"] = True
        if mode == "root":
            _give_to_worker(new_root + SUBMISSION, worker_uid)
        _pivot(new_root)
        measures.update(hidden_paths=True, private_tmp=True)
        os.chdir(SUBMISSION)
        if mode == "root":
            _become_worker(worker_uid)
            measures["unprivileged_user"] = True
            measures["uid"] = worker_uid
        else:
            _drop_capabilities()
            measures["unprivileged_user"] = uid != 0
            measures["uid"] = 65534
            if uid == 0:
                measures["notes"].append("outside its user namespace the worker keeps the grader's uid 0")
        measures["process_limit"] = True
    else:
        measures["notes"].append("no namespaces: the worker can read every file its uid can, and reach the network")
        if os.geteuid() == 0:  # still leave root: a uid of its own limits processes and signals
            worker_uid = UID_BASE + os.getpid()
            os.chmod(os.path.dirname(submission_dir), 0o711)
            _give_to_worker(submission_dir, worker_uid)
            _become_worker(worker_uid)
            measures.update(unprivileged_user=True, uid=worker_uid)
        os.chdir(submission_dir)
        measures["process_limit"] = os.geteuid() != 0
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    try:
        apply_limits(limits)
        measures["resource_limits"] = True
    except (ValueError, OSError) as error:
        measures["notes"].append(f"resource limits not all applied ({error})")
    return measures


def working_paths(plan: dict) -> tuple[str, str]:
    """(submission directory, temporary directory) as the isolated worker sees them."""
    if plan.get("mode", "none") == "none":
        return plan["submission_dir"], plan["submission_dir"]
    return SUBMISSION, "/tmp"


def probe(modes: list[str], scratch: str) -> dict:
    """The first of `modes` this machine allows, tried in throwaway children; its measures."""
    import json

    failures = []
    for mode in modes:
        submission = os.path.join(scratch, mode, "work")
        os.makedirs(submission, exist_ok=True)
        for directory in (scratch, os.path.dirname(scratch), os.path.dirname(submission)):
            os.chmod(directory, 0o711)  # like a worker's private folder: traversable, not listable
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            try:
                measures = isolate({"mode": mode, "submission_dir": submission,
                                    "new_root": os.path.join(scratch, mode, "root"), "limits": {}})
                report = {"ok": measures}
            except BaseException as error:
                report = {"error": f"{type(error).__name__}: {error}"}
            os.write(write_fd, json.dumps(report).encode())
            os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as stream:
            data = stream.read()
        os.waitpid(pid, 0)
        try:
            report = json.loads(data or b"{}")
        except ValueError:
            report = {}
        if "ok" in report:
            report["ok"]["notes"] = failures + report["ok"]["notes"]
            return report["ok"]
        failures.append(f"{mode} mode refused: {report.get('error', 'no report')}")
    raise IsolationFailed("; ".join(failures))


if __name__ == "__main__":
    import json

    request = json.loads(sys.argv[1])
    try:
        print(json.dumps({"ok": probe(request["modes"], request["scratch"])}))
    except IsolationFailed as error:
        print(json.dumps({"error": str(error)}))
