"""The judge's syscall filter: one compiled classic-BPF program, installed by bwrap (``--seccomp FD``)
in the bwrap tier and by the harness in the rlimit tier, before any submission code runs.

What it denies, and why (each is an attack test in ``tests/graders/test_sandbox_attacks.py``):

* kernel keyrings (``keyctl``, ``add_key``, ``request_key``): keys outlive a run and are shared
  through the session keyring and by uid, so one run could leave data for a later one;
* memory the rlimits do not count: ``memfd_create``, ``memfd_secret`` and SysV ``shmget``,
  ``msgget``, ``semget`` (a memfd or a SysV segment is not part of RLIMIT_AS until mapped, and a
  SysV segment outlives its process);
* sockets: in the rlimit tier every ``socket()``; in the bwrap tier every family but AF_UNIX
  (AF_VSOCK and friends are not covered by the network namespace); ``socketpair`` only AF_UNIX;
* other processes: ``fork``, ``vfork`` and ``clone`` without ``CLONE_THREAD`` fail with EAGAIN
  (Python raises BlockingIOError, as at RLIMIT_NPROC), so a run is one process and its threads. Each
  process has its own RLIMIT_DATA/AS, so 16 forked children could hold 16 times ``memory_mb``; one
  address space keeps everything a run can hold under its rlimits (plus the tmpfs sizes) without a
  memory cgroup. Threads (``clone`` with ``CLONE_THREAD``) are allowed, up to RLIMIT_NPROC;
* namespaces and mounts (``unshare``, ``setns``, ``mount``, the new mount API, ``pivot_root``,
  ``chroot``, ``clone`` with any ``CLONE_NEW*`` flag) and ``clone3``, whose flags a BPF filter
  cannot read (it fails with ENOSYS, and glibc falls back to ``clone``);
* introspection and kernel surface: ``ptrace``, ``process_vm_readv/writev``, ``bpf``,
  ``userfaultfd``, ``perf_event_open``, ``io_uring_*``, ``open_by_handle_at``, ``fanotify_init``,
  module loading, ``kexec``, ``reboot``, ``swapon``, ``acct``, ``quotactl``, ``syslog``;
* any other syscall ABI than the native one (x32 on x86_64 too): the process is killed.

Denied calls fail with EPERM (clone3 with ENOSYS, new processes with EAGAIN) rather than killing
the process, so Python code sees an ordinary ``OSError``. Supported on x86_64 and aarch64; elsewhere ``program()`` returns None
and the judge reports that the filter is missing.
"""

from __future__ import annotations

import errno
import platform
import struct

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

# name: (x86_64, aarch64)
DENIED: dict[str, tuple[int, int]] = {
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "memfd_create": (319, 279), "memfd_secret": (447, 447),
    "shmget": (29, 194), "msgget": (68, 186), "semget": (64, 190),
    "unshare": (272, 97), "setns": (308, 268), "mount": (165, 40), "umount2": (166, 39),
    "pivot_root": (155, 41), "chroot": (161, 51), "open_tree": (428, 428), "move_mount": (429, 429),
    "fsopen": (430, 430), "fsconfig": (431, 431), "fsmount": (432, 432), "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "bpf": (321, 280), "userfaultfd": (323, 282), "perf_event_open": (298, 241),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264), "fanotify_init": (300, 262),
    "init_module": (175, 105), "finit_module": (313, 273), "delete_module": (176, 106),
    "kexec_load": (246, 104), "kexec_file_load": (320, 294), "reboot": (169, 142),
    "swapon": (167, 224), "swapoff": (168, 225), "acct": (163, 89), "quotactl": (179, 60),
    "syslog": (103, 116),
}
SOCKET = (41, 198)
SOCKETPAIR = (53, 199)
CLONE = (56, 220)
CLONE3 = (435, 435)
FORK_VFORK = (57, 58)  # x86_64 only: aarch64 has no fork/vfork syscalls (glibc uses clone)
AF_UNIX = 1
CLONE_THREAD = 0x00010000
CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
#                 NEWNS        NEWCGROUP    NEWUTS       NEWIPC       NEWUSER      NEWPID       NEWNET       NEWTIME

_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_ERRNO = 0x00050000
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (little-endian: arg0's low word at 16)


def program(*, allow_unix_sockets: bool, machine: str | None = None) -> bytes | None:
    """The compiled filter (an array of struct sock_filter), or None on an unsupported architecture."""
    machine = machine or platform.machine()
    if machine not in AUDIT_ARCH:
        return None
    col = 0 if machine == "x86_64" else 1
    asm: list[object] = [
        (_LD_W_ABS, 0, 0, _ARCH),
        (_JEQ, 0, "kill", AUDIT_ARCH[machine]),
        (_LD_W_ABS, 0, 0, _NR),
    ]
    if machine == "x86_64":
        asm.append((_JGE, "eperm", 0, 0x40000000))  # the x32 ABI
        asm += [(_JEQ, "eagain", 0, nr) for nr in FORK_VFORK]
    asm += [(_JEQ, "eperm", 0, nrs[col]) for nrs in DENIED.values()]
    asm += [
        (_JEQ, "enosys", 0, CLONE3[col]),
        (_JEQ, "unix_only" if allow_unix_sockets else "eacces", 0, SOCKET[col]),
        (_JEQ, "unix_only", 0, SOCKETPAIR[col]),
        (_JEQ, "clone", 0, CLONE[col]),
        (_RET, 0, 0, _ALLOW),
        "unix_only", (_LD_W_ABS, 0, 0, _ARG0), (_JEQ, "allow", "eperm", AF_UNIX),
        "clone", (_LD_W_ABS, 0, 0, _ARG0), (_JSET, "eperm", 0, CLONE_NEW_FLAGS),
        (_JSET, "allow", "eagain", CLONE_THREAD),  # a thread of this process, or another process
        "allow", (_RET, 0, 0, _ALLOW),
        "eperm", (_RET, 0, 0, _ERRNO | errno.EPERM),
        "eagain", (_RET, 0, 0, _ERRNO | errno.EAGAIN),
        "eacces", (_RET, 0, 0, _ERRNO | errno.EACCES),
        "enosys", (_RET, 0, 0, _ERRNO | errno.ENOSYS),
        "kill", (_RET, 0, 0, _KILL_PROCESS),
    ]
    return _assemble(asm)


def _assemble(asm: list[object]) -> bytes:
    """Resolve label names in jt/jf to relative offsets and pack the instructions."""
    labels: dict[str, int] = {}
    code: list[tuple[int, int | str, int | str, int]] = []
    for item in asm:
        if isinstance(item, str):
            labels[item] = len(code)
        else:
            code.append(item)  # type: ignore[arg-type]
    out = []
    for n, (op, jt, jf, k) in enumerate(code):
        out.append(struct.pack("<HBBI", op, _offset(jt, labels, n), _offset(jf, labels, n), k))
    return b"".join(out)


def _offset(target: int | str, labels: dict[str, int], n: int) -> int:
    if isinstance(target, int):
        return target
    offset = labels[target] - (n + 1)
    if not 0 <= offset <= 255:
        raise ValueError(f"seccomp jump to {target} out of range ({offset})")
    return offset
