"""A small seccomp filter for the jobs: system calls a graded program never needs, refused.

Why: bubblewrap's namespaces wall a job in, but some kernel features reach around the limits
the grader measures. Memory held in a `memfd` or an unattached SysV shared-memory segment is in
no process's resident set, so a job could hold gigabytes past its memory limit; `io_uring` and
`userfaultfd` are large attack surfaces no course code uses; `ptrace` and `process_vm_*` would
let student code tamper with the sandbox's own init. Each is answered with EPERM.

The filter is a classic BPF program written here (no libseccomp in the venv): check the
architecture (other ABIs, and x86-64's x32 calls, are refused outright), then the number.
"""

from __future__ import annotations

import os
import platform
import struct

__all__ = ["filter_fd", "job_program", "program"]

# BPF instruction classes and fields (linux/filter.h, linux/seccomp.h)
BPF_LD, BPF_W, BPF_ABS = 0x00, 0x00, 0x20
BPF_JMP, BPF_JEQ, BPF_JGE, BPF_K = 0x05, 0x10, 0x30, 0x00
BPF_RET = 0x06
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_KILL_PROCESS = 0x80000000
EPERM = 1
X32_SYSCALL_BIT = 0x40000000

ARCHES = {
    # machine: (AUDIT_ARCH_*, the refused calls by number)
    "x86_64": (
        0xC000003E,
        {
            "memfd_create": 319,
            "memfd_secret": 447,
            "shmget": 29,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "userfaultfd": 323,
            "ptrace": 101,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
            "bpf": 321,
            "perf_event_open": 298,
            "add_key": 248,
            "request_key": 249,
            "keyctl": 250,
            "open_by_handle_at": 304,
            "kexec_load": 246,
        },
    ),
    "aarch64": (
        0xC00000B7,
        {
            "memfd_create": 279,
            "memfd_secret": 447,
            "shmget": 194,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "userfaultfd": 282,
            "ptrace": 117,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
            "bpf": 280,
            "perf_event_open": 241,
            "add_key": 217,
            "request_key": 218,
            "keyctl": 219,
            "open_by_handle_at": 265,
            "kexec_load": 104,
        },
    ),
}


def _op(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None where it is not known."""
    known = ARCHES.get(machine or platform.machine())
    if known is None:
        return None
    arch, calls = known
    numbers = sorted(set(calls.values()))
    deny = _op(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | EPERM)
    body = [
        _op(BPF_LD | BPF_W | BPF_ABS, 0, 0, 4),  # seccomp_data.arch
        _op(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, arch),  # our ABI: go on; any other: killed
        _op(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
        _op(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if arch == ARCHES["x86_64"][0]:  # x32 calls carry this bit: refused, whatever the number
        body.append(_op(BPF_JMP | BPF_JGE | BPF_K, len(numbers) + 1, 0, X32_SYSCALL_BIT))
    for i, number in enumerate(numbers):
        # equal: jump over the remaining tests and the allow to the deny
        body.append(_op(BPF_JMP | BPF_JEQ | BPF_K, len(numbers) - i, 0, number))
    body.append(_op(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW))
    body.append(deny)
    return b"".join(body)


def filter_fd() -> int | None:
    """A memfd holding the filter, for `bwrap --seccomp FD` (None: no filter for this machine)."""
    code = program()
    if code is None:
        return None
    fd = os.memfd_create("grader-seccomp", 0)
    os.write(fd, code)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


# A warm job (grader.run.warm) is walled in by namespaces its worker builds itself, after
# bubblewrap's: nothing inside may build, join or change a namespace or a mount again (the job's
# counterpart of `bwrap --disable-userns`, and more). clone3 answers ENOSYS: its flags sit in
# memory a filter cannot read, and glibc then falls back to clone, whose flags it can.
JOB_ONLY = {
    "x86_64": {
        "unshare": 272,
        "setns": 308,
        "mount": 165,
        "umount2": 166,
        "pivot_root": 155,
        "chroot": 161,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "clone": 56,
        "clone3": 435,
    },
    "aarch64": {
        "unshare": 97,
        "setns": 268,
        "mount": 40,
        "umount2": 39,
        "pivot_root": 41,
        "chroot": 51,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "clone": 220,
        "clone3": 435,
    },
}
BPF_JSET = 0x40
ENOSYS = 38
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET (CLONE_NEWTIME shares
# clone's exit-signal byte, and is reachable through unshare and clone3 only: both refused).
CLONE_NAMESPACES = (
    0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
)


def job_program(machine: str | None = None) -> bytes | None:
    """The filter a warm job installs on itself after its walls are built (on top of
    `program()`, which its worker already has): clone only without namespace flags."""
    machine = machine or platform.machine()
    if machine not in JOB_ONLY:
        return None
    arch = ARCHES[machine][0]
    calls = JOB_ONLY[machine]
    refused = sorted(n for name, n in calls.items() if name not in ("clone", "clone3"))
    ret = BPF_RET | BPF_K
    body = [
        _op(BPF_LD | BPF_W | BPF_ABS, 0, 0, 4),
        _op(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, arch),
        _op(ret, 0, 0, SECCOMP_RET_KILL_PROCESS),
        _op(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0),
    ]
    # Layout after the tests: [allow][deny EPERM][deny ENOSYS][clone: load flags][jset][allow][deny]
    tests = len(refused) + 2
    for i, number in enumerate(refused):
        body.append(_op(BPF_JMP | BPF_JEQ | BPF_K, tests - i, 0, number))  # -> deny EPERM
    body.append(_op(BPF_JMP | BPF_JEQ | BPF_K, 3, 0, calls["clone3"]))  # -> deny ENOSYS
    body.append(_op(BPF_JMP | BPF_JEQ | BPF_K, 3, 0, calls["clone"]))  # -> the flags test
    body.append(_op(ret, 0, 0, SECCOMP_RET_ALLOW))
    body.append(_op(ret, 0, 0, SECCOMP_RET_ERRNO | EPERM))
    body.append(_op(ret, 0, 0, SECCOMP_RET_ERRNO | ENOSYS))
    body.append(_op(BPF_LD | BPF_W | BPF_ABS, 0, 0, 16))  # seccomp_data.args[0], low word
    body.append(_op(BPF_JMP | BPF_JSET | BPF_K, 1, 0, CLONE_NAMESPACES))
    body.append(_op(ret, 0, 0, SECCOMP_RET_ALLOW))
    body.append(_op(ret, 0, 0, SECCOMP_RET_ERRNO | EPERM))
    return b"".join(body)
