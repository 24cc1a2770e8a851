"""A seccomp filter for the worker, installed after isolation and before the submission loads.

Defence in depth below the audit hook: system calls that create namespaces, mount or pivot file
systems, trace or read other processes, reach the kernel's keyrings, BPF, perf events, modules or
io_uring fail with EPERM (clone3 with ENOSYS, so that threads fall back to clone, whose namespace
flags are filtered). Filters cannot be removed once loaded, and PR_SET_NO_NEW_PRIVS (set by
isolation) keeps them across exec.
"""
from __future__ import annotations

import errno

CLONE_NEW_FLAGS = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
                   "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
                   "CLONE_NEWNET": 0x40000000, "CLONE_NEWTIME": 0x00000080}
DENIED = (
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount",
    "fspick", "mount_setattr", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "keyctl",
    "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "reboot", "syslog",
    "acct", "settimeofday", "clock_settime", "adjtimex", "iopl", "ioperm", "quotactl", "vhangup", "lookup_dcookie",
    "fanotify_init", "io_uring_setup", "io_uring_enter", "io_uring_register", "personality", "sethostname",
    "setdomainname",
)


def install() -> dict:
    """Load the filter into this process (and its future children); returns what is in force."""
    try:
        import pyseccomp as seccomp
    except Exception as error:  # noqa: BLE001 - no libseccomp here: recorded, not fatal
        return {"seccomp": False, "seccomp_note": f"no seccomp filter: pyseccomp unavailable ({type(error).__name__})"}
    denied = []
    syscall_filter = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED:
        try:
            syscall_filter.add_rule(seccomp.ERRNO(errno.EPERM), name)
            denied.append(name)
        except Exception:  # noqa: BLE001 - a syscall this architecture lacks
            continue
    for flag in CLONE_NEW_FLAGS.values():
        syscall_filter.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    try:
        syscall_filter.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    except Exception:  # noqa: BLE001
        pass
    syscall_filter.load()
    return {"seccomp": True, "seccomp_denied": len(denied) + 2}
