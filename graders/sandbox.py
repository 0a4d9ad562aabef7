"""Run one submission in a fresh, limited, isolated interpreter and turn what happened into a verdict.

Two tiers (see graders/README.md and SECURITY.md for exactly what each protects against):

* ``bwrap``: bubblewrap with new PID, network, IPC, UTS and mount namespaces; a read-only view of
  only the interpreter, its site-packages and /usr; size-limited private tmpfs mounts (/tmp, /dev/shm)
  as the only writable places; ``--die-with-parent`` and ``--new-session``; the seccomp filter of
  ``graders/seccomp.py`` (loaded by bwrap). Plus everything the rlimit tier does.
* ``rlimit``: resource limits, a new session, the seccomp filter (all sockets denied; in both tiers it
  keeps a run to one process, so one RLIMIT_DATA/AS bounds all the memory it holds), and, when the
  judge runs as root, a dedicated unprivileged uid per concurrent slot plus new mount, IPC and
  network namespaces entered by the harness: the bank, the repository, the bot's home and every path
  given to ``keep_private`` are hidden under empty tmpfs mounts, and /tmp, /var/tmp, /dev/shm and
  /run/lock are private, size-limited tmpfs mounts. Without root (or where namespaces are refused)
  the run has only the limits, the filter and a private work directory, and can read whatever the
  judge's uid can read: production refuses that unless the operator opts in.

In both tiers the harness (``graders/harness.py``, trusted) applies the rlimits and drops to the slot
uid before it reads the submission. Test inputs go into the sandbox one at a time, visible tests
first, each only after the previous result came back; expected outputs never go in. Results come
back as JSON lines on a dedicated pipe and are decoded with bounded depth, size and count, and a
line of another shape than the harness writes is tampering (never the judge's own error);
stdout/stderr are read incrementally with a hard cap, and nothing printed after the first hidden
test starts is returned. At the end the whole process tree is killed: the process group, then (as
root) every process of the slot uid in any state, which catches children that called ``setsid``; in
the bwrap tier the PID namespace dies with it as well. How the process ended comes from ``wait4``
(signal or exit code, and its CPU time), so a limit is reported only when it was reached; during
a hidden test neither the signal nor the status is named (the submission chooses them).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import logging
import marshal
import math
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import compare as cmp
from . import seccomp as _seccomp
from . import sql as _sql
from .harness import STUB as _STUB
from .result import (
    ACCEPTED,
    CRASHED,
    INTERNAL_ERROR,
    MEMORY_LIMIT,
    OUTPUT_LIMIT,
    RUNTIME_ERROR,
    SKIPPED,
    SYNTAX_ERROR,
    TIME_LIMIT,
    WRONG_ANSWER,
    GradeResult,
    TestResult,
)
from .spec import CodeSpec

TIERS = ("bwrap", "rlimit")

OUTPUT_KEEP = 16 * 1024  # bytes of each of stdout/stderr returned to the caller
OUTPUT_MAX = 1024 * 1024  # stdout+stderr bytes after which the run is killed (output_limit)
RESULT_MAX = 16 * 1024 * 1024  # bytes on the result pipe after which the run is killed
DISK_MAX = 32 * 1024 * 1024  # size of the writable work area
SHM_MAX = 8 * 1024 * 1024  # size of each other private tmpfs (/dev/shm, /var/tmp, /run/lock)
FILE_MAX = 16 * 1024 * 1024  # RLIMIT_FSIZE
NPROC = 16  # RLIMIT_NPROC: processes + threads of the slot uid
NOFILE = 128
AS_HEADROOM_MB = 256  # RLIMIT_AS = memory_mb + this (code, shared libraries, shared mappings)
STARTUP_S = 10.0  # generous: how long the interpreter may take to reach the harness
MAX_CODE = 2 * 1024 * 1024
SLOT_UID_BASE = 61000
SLOT_COUNT = 64
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")
QUARANTINE_S = 30.0  # a slot whose uid could not be cleared is skipped this long, then repaired
# Paths an rlimit-tier run must never see even when world-readable (besides the checkout and the
# judge's home): the bot adds its database folder and bank with keep_private().
_private_paths: set[str] = set()

_HARNESS_SRC = (Path(__file__).parent / "harness.py").read_text(encoding="utf-8")
_HARNESS_CODE = compile(_HARNESS_SRC, "onsite_harness.py", "exec", dont_inherit=True)

_SIGNAMES = {int(s): s.name for s in signal.Signals}
_log = logging.getLogger("onsite.grader")


class SandboxError(RuntimeError):
    """The judge itself could not run the submission (not the submission's fault)."""


# ---------------------------------------------------------------------------------------------------
# Environment: interpreter, paths, tier detection


def _others_can_reach(path: str) -> bool:
    """Whether a uid with no special rights can traverse to (and read) path."""
    p = Path(path)
    try:
        for part in [p, *p.parents]:
            st = os.stat(part)
            need = stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else stat.S_IROTH
            if not st.st_mode & need:
                return False
    except OSError:
        return False
    return True


def _site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    out: list[str] = []
    for key in ("purelib", "platlib"):
        p = paths.get(key)
        if p and os.path.isdir(p) and os.path.realpath(p) not in out:
            out.append(os.path.realpath(p))
    return out


@functools.lru_cache(maxsize=1)
def _python_layout() -> dict[str, Any]:
    exe = os.path.realpath(sys.executable)
    base = os.path.realpath(sys.base_prefix)
    return {
        "exe": sys.executable,
        "real_exe": exe,
        "base": base,
        "prefixes": sorted(
            {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
        ),
        "site": _site_dirs(),
    }


def _is_root() -> bool:
    return os.geteuid() == 0


def _bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def _shield_judge() -> None:
    """Rlimit tier without root: the sandbox runs as the judge's own uid, so it could read the judge's
    /proc/<pid>/environ (tokens) and memory. A non-dumpable judge makes those root-only."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE = 0
        raise SandboxError(f"prctl(PR_SET_DUMPABLE) failed: {os.strerror(ctypes.get_errno())}")


def _bwrap_args(bwrap: str, *, root: bool, disk_bytes: int, seccomp_fd: int | None = None) -> list[str]:
    """The bubblewrap command line: namespaces and a minimal read-only filesystem."""
    lay = _python_layout()
    args = [bwrap, "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-net"]
    args += ["--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if root:
        # No user namespace: the harness drops to the slot uid itself, so RLIMIT_NPROC binds on a real,
        # unprivileged uid. bwrap sets no_new_privs; the two capabilities exist only until that drop.
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user"]
    args += ["--ro-bind", "/usr", "/usr"]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    binds: list[str] = []
    for p in [*lay["prefixes"], *lay["site"]]:
        if p.startswith("/usr/") or p == "/usr":
            continue
        binds.append(p)
    # Also the unresolved venv path (its bin/python symlink), kept even if it lies inside a repo.
    venv = os.path.abspath(sys.prefix)
    if venv not in binds and not venv.startswith("/usr/"):
        binds.append(venv)
    binds = sorted(set(binds))
    # The private /tmp first: the interpreter's binds below are mounted on top of it, so a venv
    # that lives under the host's /tmp (a CI checkout) stays visible while the rest of /tmp does not.
    args += ["--perms", "1777", "--size", str(disk_bytes), "--tmpfs", "/tmp"]
    kept = [b for b in binds if not any(b != o and b.startswith(o + "/") for o in binds)]
    made: set[str] = set()
    for b in kept:
        for parent in reversed(Path(b).parents):
            sp = str(parent)
            if sp == "/" or sp in made:
                continue
            made.add(sp)
            args += ["--perms", "0755", "--dir", sp]
        args += ["--ro-bind", b, b]
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(SHM_MAX), "--tmpfs", "/dev/shm"]
    args += ["--chdir", "/tmp"]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    return args


# What the last run in this thread used (slot uid, host work dir): lets tests check for leftovers.
last_run = threading.local()

_tier_lock = threading.Lock()
_tier_cache: dict[str, tuple[bool, str]] = {}


def bwrap_status() -> tuple[bool, str]:
    """Whether the bwrap tier works on this machine, and why not (probed once, with a real sandbox)."""
    with _tier_lock:
        if "bwrap" in _tier_cache:
            return _tier_cache["bwrap"]
        bwrap = _bwrap_path()
        if bwrap is None:
            status = (False, "bwrap is not installed")
        else:
            cmd = [*_bwrap_args(bwrap, root=_is_root(), disk_bytes=1 << 20)]
            cmd += [_python_layout()["exe"], "-I", "-c", "import sys; sys.stdout.write('ok')"]
            try:
                p = subprocess.run(cmd, capture_output=True, timeout=20, env=_sandbox_env("/tmp"))
                ok = p.returncode == 0 and p.stdout == b"ok"
                why = "" if ok else p.stderr.decode("utf-8", "replace").strip()[:300] or f"exit {p.returncode}"
                status = (ok, why)
            except (OSError, subprocess.TimeoutExpired) as e:
                status = (False, f"bwrap probe failed: {e}")
        _tier_cache["bwrap"] = status
        return status


def _probe(name: str, cmd: list[str], pass_fds: tuple[int, ...] = ()) -> tuple[bool, str]:
    """Run a tiny program once and cache whether it printed ok (and why not)."""
    with _tier_lock:
        if name in _tier_cache:
            return _tier_cache[name]
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=20, env=_sandbox_env("/tmp"), pass_fds=pass_fds)
            ok = p.returncode == 0 and p.stdout == b"ok"
            why = "" if ok else p.stderr.decode("utf-8", "replace").strip()[-300:] or f"exit {p.returncode}"
            status = (ok, why)
        except (OSError, subprocess.TimeoutExpired) as e:
            status = (False, f"{name} probe failed: {e}")
        _tier_cache[name] = status
        return status


_SECCOMP_PROBE = (
    "import ctypes,socket,sys\n"
    "libc=ctypes.CDLL(None,use_errno=True)\n"
    "prog=open(sys.argv[1],'rb').read()\n"
    "buf=ctypes.create_string_buffer(prog,len(prog))\n"
    "class F(ctypes.Structure): _fields_=[('len',ctypes.c_ushort),('filter',ctypes.c_void_p)]\n"
    "f=F(len(prog)//8,ctypes.cast(buf,ctypes.c_void_p))\n"
    "libc.prctl.argtypes=[ctypes.c_int,ctypes.c_ulong,ctypes.c_void_p,ctypes.c_ulong,ctypes.c_ulong]\n"
    "assert libc.prctl(38,1,None,0,0)==0 and libc.prctl(22,2,ctypes.byref(f),0,0)==0, 'prctl refused'\n"
    "try: socket.socket(); sys.exit('the filter did not deny socket()')\n"
    "except PermissionError: sys.stdout.write('ok')\n"
)


def seccomp_status() -> tuple[bool, str]:
    """Whether this kernel takes the judge's seccomp filter (x86_64 and aarch64 only)."""
    prog = _seccomp.program(allow_unix_sockets=False)
    if prog is None:
        return False, f"no filter for {os.uname().machine}"
    with tempfile.NamedTemporaryFile(prefix="onsite-seccomp-", suffix=".bpf") as f:
        f.write(prog)
        f.flush()
        return _probe("seccomp", [_python_layout()["exe"], "-I", "-c", _SECCOMP_PROBE, f.name])


def bwrap_seccomp_status() -> tuple[bool, str]:
    """Whether bwrap loads the filter itself (``--seccomp FD``), so its sandbox starts filtered."""
    bwrap = _bwrap_path()
    if not bwrap_status()[0] or bwrap is None:
        return False, "bwrap is not usable"
    prog = _seccomp.program(allow_unix_sockets=True)
    if prog is None or not seccomp_status()[0]:
        return False, "no seccomp filter on this machine"
    fd = os.memfd_create("onsite-seccomp-probe", 0)
    try:
        os.write(fd, prog)
        os.lseek(fd, 0, os.SEEK_SET)
        cmd = _bwrap_args(bwrap, root=_is_root(), disk_bytes=1 << 20, seccomp_fd=fd)
        cmd += [_python_layout()["exe"], "-I", "-c",
                "import socket,sys\ntry: socket.socket(); sys.exit('socket() allowed')\n"
                "except PermissionError: sys.stdout.write('ok')"]
        return _probe("bwrap-seccomp", cmd, pass_fds=(fd,))
    finally:
        os.close(fd)


_ISOLATION_PROBE = (
    "import ctypes,os\n"
    "libc=ctypes.CDLL(None,use_errno=True)\n"
    "libc.mount.argtypes=[ctypes.c_char_p]*3+[ctypes.c_ulong,ctypes.c_char_p]\n"
    "assert libc.unshare(0x00020000|0x08000000|0x40000000)==0, os.strerror(ctypes.get_errno())\n"
    "assert libc.mount(None,b'/',None,0x44000,None)==0, os.strerror(ctypes.get_errno())\n"
    "assert libc.mount(b'none',b'/tmp',b'tmpfs',6,b'size=65536,mode=1777')==0, os.strerror(ctypes.get_errno())\n"
    "print('ok',end='')\n"
)


def isolation_status() -> tuple[bool, str]:
    """Whether the rlimit tier can enter mount/IPC/network namespaces (root with CAP_SYS_ADMIN)."""
    if not _is_root():
        return False, "the judge is not root"
    return _probe("isolation", [_python_layout()["exe"], "-I", "-c", _ISOLATION_PROBE])


def cgroup_status() -> tuple[bool, str]:
    """Memory cgroups are not used: the judge bounds memory with rlimits, the seccomp filter (which
    keeps a run to one process, so one RLIMIT_DATA/AS covers all of it) and size-limited tmpfs.
    Says what the machine offers, for the operator."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return False, "no /proc/self/cgroup"
    if lines == [ln for ln in lines if ln.startswith("0::")]:
        path = "/sys/fs/cgroup" + lines[0][3:]
        try:
            controllers = Path(path, "cgroup.controllers").read_text().split()
        except OSError:
            controllers = []
        delegated = "memory" in controllers and os.access(path, os.W_OK)
        here = ("cgroup v2 with the memory controller delegated to the judge" if delegated
                else "cgroup v2 without the memory controller delegated to the judge")
    else:
        here = "cgroup v1 or hybrid: no memory.max, no cgroup.kill"
    return False, f"not used ({here}); the filter keeps a run to one process, so its rlimits bound its memory"


_WITHOUT_FILTER = (f"; without it a run may start up to {NPROC} processes, each with its own memory limit, and "
                   "use memfd, SysV IPC and kernel keyrings")


def capabilities(tier: str | None = None) -> list[tuple[str, bool, str]]:
    """What the judge's defences can use on this machine: (defence, available, detail), for the
    start-up log and ``graders selftest``."""
    chosen = tier or detect_tier()
    rows: list[tuple[str, bool, str]] = []
    ok, why = bwrap_status()
    rows.append(("bwrap tier", ok, "namespaces, read-only system view" if ok else why))
    if chosen == "bwrap":
        ok, why = bwrap_seccomp_status()
        rows.append(("seccomp filter (loaded by bwrap)", ok, "one process, keyrings, memfd, SysV IPC, non-AF_UNIX "
                     "sockets..." if ok else why + _WITHOUT_FILTER))
    else:
        ok, why = seccomp_status()
        rows.append(("seccomp filter (loaded by the harness)", ok, "one process, sockets, keyrings, memfd, SysV IPC..."
                     if ok else why + _WITHOUT_FILTER))
        ok, why = isolation_status()
        rows.append(("rlimit tier namespaces", ok, "bank, repository and home hidden; private /tmp, IPC, network"
                     if ok else why + "; files readable by the sandbox uid are readable by submissions"))
        rows.append(("per-slot uids", _is_root(), "one unprivileged uid per run" if _is_root()
                     else "the judge is not root: runs share its uid"))
    ok, why = cgroup_status()
    rows.append(("memory cgroup", ok, why))
    return rows


def keep_private(*paths: str | os.PathLike[str]) -> None:
    """Hide these paths (files: their folder) from rlimit-tier runs, even when world-readable."""
    for p in paths:
        real = os.path.realpath(p)
        _private_paths.add(real if os.path.isdir(real) or not os.path.exists(real) else os.path.dirname(real))


_NEVER_HIDDEN = ("/", "/usr", "/proc", "/dev", "/sys", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/run", "/var")


def _hidden_paths() -> list[str]:
    """Folders covered with an empty tmpfs in the rlimit tier: the checkout, home, keep_private()."""
    here = Path(__file__).resolve().parents[1]
    wanted = set(_private_paths)
    if (here / "pyproject.toml").exists() or (here / "questions").is_dir():
        wanted.add(str(here))
    home = os.path.realpath(os.path.expanduser("~"))
    wanted.add(home)
    if _is_root():
        wanted.add("/root")
    # these get a private tmpfs anyway; what lies inside them is still hidden on its own, because the
    # harness reaches the interpreter through descriptors below it, and `..` from those climbs to the
    # covered folder itself, not to the tmpfs over its parent
    private = {os.path.realpath(d) for d in WORLD_WRITABLE}
    keep = set(_NEVER_HIDDEN) | private
    out: list[str] = []
    for w in sorted(wanted):
        if not os.path.isdir(w) or w in keep or any(k.startswith(w.rstrip("/") + "/") for k in keep):
            continue
        if any(w.startswith(o.rstrip("/") + "/") for o in out):
            continue  # inside a folder already hidden
        out.append(w)
    return out


def _private_tmpfs() -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    for d in WORLD_WRITABLE:
        real = os.path.realpath(d)
        if real in seen or not os.path.isdir(real):
            continue
        seen.add(real)
        out.append((real, DISK_MAX if d == "/tmp" else SHM_MAX))
    return out


def detect_tier() -> str:
    """``bwrap`` when bubblewrap works here, else ``rlimit``."""
    return "bwrap" if bwrap_status()[0] else "rlimit"


def _sandbox_env(home: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "VECLIB_MAXIMUM_THREADS": "1",
    }


# ---------------------------------------------------------------------------------------------------
# Slots: one unprivileged uid per concurrent run (root only)


def _private_base() -> Path:
    """A judge-owned directory under the system temp dir, refusing anything a sandbox could have planted."""
    base = Path(tempfile.gettempdir()) / f"onsite-grader-{os.geteuid()}"
    try:
        os.mkdir(base, 0o711)
    except FileExistsError:
        pass
    st = os.lstat(base)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise SandboxError(f"{base} exists but is not a private directory of this user; remove it")
    os.chmod(base, 0o711)
    return base


_quarantine: dict[int, float] = {}  # slot number -> when it may be tried again
_quarantine_lock = threading.Lock()


@contextlib.contextmanager
def _slot(timeout_s: float = 60.0) -> Iterator[int | None]:
    """Hold one slot uid exclusively across processes (flock), or None when not root.

    A slot whose uid still has processes after the kill (a process stuck in the kernel, say) is
    quarantined: skipped without waiting for QUARANTINE_S, then repaired (killed again and checked)
    before it is used, so one bad slot costs the pool one slot, never a wait per submission."""
    if not _is_root():
        yield None
        return
    locks = _private_base() / "slots"
    with contextlib.suppress(FileExistsError):
        os.mkdir(locks, 0o700)
    deadline = time.monotonic() + timeout_s
    start = int.from_bytes(os.urandom(2), "little") % SLOT_COUNT
    while True:
        now = time.monotonic()
        for k in range(SLOT_COUNT):
            n = (start + k) % SLOT_COUNT
            with _quarantine_lock:
                if _quarantine.get(n, 0.0) > now:
                    continue
            fd = os.open(locks / f"{n}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            uid = SLOT_UID_BASE + n
            if not _uid_clear(uid):
                os.close(fd)
                with _quarantine_lock:
                    _quarantine[n] = time.monotonic() + QUARANTINE_S
                _log.warning("sandbox slot %d (uid %d) quarantined for %.0f s: its processes would not die",
                             n, uid, QUARANTINE_S)
                continue
            _remove_ipc(uid)
            with _quarantine_lock:
                if _quarantine.pop(n, None) is not None:
                    _log.warning("sandbox slot %d (uid %d) repaired", n, uid)
            try:
                yield uid
            finally:
                os.close(fd)
            return
        if time.monotonic() > deadline:
            raise SandboxError("no free sandbox slot")
        time.sleep(0.02)


def _proc_uid_state(pid: str) -> tuple[int, str, int] | None:
    """(real uid, state, threads) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            data = f.read(4096)
    except OSError:
        return None
    uid, state, threads = -1, "?", 1
    for line in data.split(b"\n"):
        if line.startswith(b"State:"):
            state = line.split()[1].decode()
        elif line.startswith(b"Uid:"):
            uid = int(line.split()[1])  # real uid: what RLIMIT_NPROC and kill(2) permission follow
        elif line.startswith(b"Threads:"):
            threads = int(line.split()[1])
    return uid, state, threads


def _uid_pids(uid: int) -> list[tuple[int, str, int]]:
    """(pid, state, threads) of every process whose real uid is ``uid`` (what RLIMIT_NPROC counts)."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    out = []
    for pid in pids:
        info = _proc_uid_state(pid)
        if info is not None and info[0] == uid:
            out.append((int(pid), info[1], info[2]))
    return out


def _alive(state: str, threads: int) -> bool:
    """A zombie leader whose other threads still run (it called SYS_exit on its own thread) is alive:
    kill(2) on its pid reaches the whole thread group."""
    return state not in ("Z", "X") or threads > 1


def _kill_uid(uid: int) -> int:
    """SIGKILL every live process whose real uid is ``uid``, in any state, until none is left; returns how many."""
    killed = 0
    for _ in range(200):
        live = [pid for pid, state, threads in _uid_pids(uid) if _alive(state, threads)]
        if not live:
            return killed
        for pid in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed += len(live)
        time.sleep(0.002)
    return killed


def _uid_clear(uid: int, wait_s: float = 0.5) -> bool:
    """Kill what is left of ``uid`` and wait up to ``wait_s`` until no process of it exists, zombies
    included: unreaped processes still count for RLIMIT_NPROC and would fail the next run's forks."""
    deadline = time.monotonic() + wait_s
    while _uid_pids(uid):  # one scan (~2 ms) in the usual case: nothing left
        if time.monotonic() > deadline:
            return False
        _kill_uid(uid)
        time.sleep(0.005)
    return True


_IPC_RMID = 0
_IPC_TABLES = (("shm", "shmctl"), ("sem", "semctl"), ("msg", "msgctl"))  # /proc/sysvipc table, libc call


def _remove_ipc(uid: int) -> int:
    """Remove every SysV shared-memory segment, semaphore set and message queue that ``uid`` owns or
    created in the judge's IPC namespace; returns how many. The filter refuses SysV IPC, so these can
    only be left by a run without it (an older version, a host without seccomp); they outlive every
    process and would hold memory, or be read by the next submission that gets the same slot uid."""
    removed = 0
    libc: Any = None
    for table, call in _IPC_TABLES:
        try:
            head, *rows = Path(f"/proc/sysvipc/{table}").read_text().splitlines()
        except (OSError, ValueError):
            continue
        names = head.split()
        uid_cols = [names.index(c) for c in ("uid", "cuid") if c in names]
        for row in rows:
            cols = row.split()
            if not any(int(cols[c]) == uid for c in uid_cols):
                continue
            if libc is None:
                libc = ctypes.CDLL(None, use_errno=True)
            fn = getattr(libc, call)
            args = (int(cols[1]), 0, _IPC_RMID, None) if table == "sem" else (int(cols[1]), _IPC_RMID, None)
            if fn(*args) == 0:
                removed += 1
            else:
                _log.warning("could not remove SysV %s %s of uid %d: errno %d", table, cols[1], uid,
                             ctypes.get_errno())
    return removed


def _sweep_world_writable(uid: int) -> None:
    """Remove what the slot uid left in shared writable directories (rlimit tier without namespaces)."""
    for d in WORLD_WRITABLE:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_uid != uid:
                continue
            if stat.S_ISDIR(st.st_mode):
                remove_tree(e.path)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(e.path)


def remove_tree(path: str) -> None:
    """Delete a directory tree of any depth without recursion and without following symlinks.

    ``shutil.rmtree`` recurses once per level and raises RecursionError on a tree a submission made
    1,500 levels deep. This walks with an explicit stack of directory descriptors (``dir_fd``, so
    no path grows long and no symlink is followed), makes each directory writable before emptying it,
    and raises SandboxError only if something is left at the end."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        top = os.open(path, flags)
    except FileNotFoundError:
        return
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    # each frame: [fd of a directory, its name in the parent, subdirectories still to empty (None: not read yet)]
    stack: list[list[Any]] = [[top, None, None]]
    try:
        while stack:
            frame = stack[-1]
            fd = frame[0]
            if frame[2] is None:
                with contextlib.suppress(OSError):
                    os.fchmod(fd, 0o700)
                subdirs = []
                with os.scandir(fd) as it:
                    for e in it:
                        try:
                            is_dir = e.is_dir(follow_symlinks=False)
                        except OSError:
                            is_dir = False
                        if is_dir:
                            subdirs.append(e.name)
                        else:
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(e.name, dir_fd=fd)
                frame[2] = subdirs
            if frame[2]:
                name = frame[2].pop()
                try:
                    child = os.open(name, flags, dir_fd=fd)
                except OSError:
                    continue
                stack.append([child, name, None])
                continue
            stack.pop()
            os.close(fd)
            if stack:
                with contextlib.suppress(FileNotFoundError):
                    os.rmdir(frame[1], dir_fd=stack[-1][0])
    finally:
        for frame in stack:
            with contextlib.suppress(OSError):
                os.close(frame[0])
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise SandboxError(f"could not remove {path}: {e.strerror}") from None


def _dir_usage(path: str, max_entries: int = 20000) -> int:
    """Bytes used under path (not following symlinks); huge trees count as over the limit."""
    total = 0
    seen = 0
    stack = [path]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except OSError:
            continue
        with it:
            for e in it:
                seen += 1
                if seen > max_entries:
                    return DISK_MAX + 1
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += st.st_blocks * 512 + 4096
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
    return total


# ---------------------------------------------------------------------------------------------------
# One run


@dataclass
class _Stream:
    keep: bytearray = field(default_factory=bytearray)
    total: int = 0
    cutoff: int | None = None  # bytes written before the first hidden test's input was sent

    def add(self, data: bytes) -> None:
        self.total += len(data)
        if self.cutoff is None:  # once hidden tests started, bytes are only counted
            room = OUTPUT_KEEP - len(self.keep)
            if room > 0:
                self.keep += data[:room]

    def text(self) -> str:
        s = bytes(self.keep).decode("utf-8", "replace").replace("\x00", "\\x00")
        before = self.total if self.cutoff is None else self.cutoff
        if before > len(self.keep):
            s += f"\n[... output truncated: {before} bytes in total, first {len(self.keep)} shown]"
        if self.cutoff is not None and self.total > self.cutoff:
            s += ("\n" if s else "") + "[output written during hidden tests is not shown]"
        return s


@dataclass
class _Run:
    lines: list[Any] = field(default_factory=list)
    ready_at: float | None = None
    killed_for: str | None = None
    limit: str | None = None
    tampered: bool = False
    returncode: int | None = None
    cpu_s: float | None = None  # CPU time of the sandboxed tree, from wait4
    values: int = 0  # values decoded from the result pipe so far (bounded by cmp.MAX_VALUES)
    order: tuple[int, ...] = ()  # run position -> index in spec.tests (visible tests first)
    sent: int = 0  # inputs sent so far
    sent_at: dict[int, float] = field(default_factory=dict)
    took_ms: dict[int, float] = field(default_factory=dict)  # measured by the parent, per run position
    hidden_from: int = 0  # run position of the first hidden test
    one_process: bool = False  # the seccomp filter was on: the run could not start other processes


def _build_config(code: str, spec: CodeSpec, result_fd: int, input_fd: int, drop_to: tuple[int, int] | None,
                  seccomp: bytes | None, isolate: dict[str, Any] | None, sys_path: list[str], nproc: int,
                  keep_fds: list[int]) -> bytes:
    mem = spec.memory_mb * 1024 * 1024
    cpu = _cpu_soft(spec)
    rlimits: dict[str, Any] = {
        "RLIMIT_CPU": (cpu, cpu + 1),
        "RLIMIT_DATA": (mem, mem),
        "RLIMIT_AS": (mem + AS_HEADROOM_MB * 1024 * 1024,) * 2,
        "RLIMIT_FSIZE": (FILE_MAX, FILE_MAX),
        "RLIMIT_NOFILE": (NOFILE, NOFILE),
        "RLIMIT_CORE": (0, 0),
        "RLIMIT_MEMLOCK": (0, 0),
        "RLIMIT_MSGQUEUE": (0, 0),
        "RLIMIT_NPROC": (nproc, nproc),
    }
    cfg = {
        "result_fd": result_fd,
        "input_fd": input_fd,
        "rlimits": rlimits,
        "drop_to": drop_to,
        "seccomp": seccomp,
        "isolate": isolate,
        "sys_path": sys_path,
        "keep_fds": keep_fds,
        "code": code,
        "entry": spec.entry,
        "n_tests": len(spec.tests),
    }
    return marshal.dumps((_HARNESS_CODE, cfg))


def _cpu_soft(spec: CodeSpec) -> int:
    """RLIMIT_CPU's soft limit (SIGXCPU); the hard limit (SIGKILL) is one second more."""
    return math.ceil(spec.time_limit_s) + 1


def _frame(test: Any) -> bytes:
    if test.frame is not None:
        return bytes(test.frame)
    blob = marshal.dumps((tuple(test.args), dict(test.kwargs)))
    return len(blob).to_bytes(4, "big") + blob


def _own_process_count(uid: int) -> int:
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/status", "rb") as f:
                    data = f.read(4096)
            except OSError:
                continue
            uid_line = next((ln for ln in data.split(b"\n") if ln.startswith(b"Uid:")), b"")
            if uid_line and int(uid_line.split()[1]) == uid:
                thr = next((ln for ln in data.split(b"\n") if ln.startswith(b"Threads:")), b"Threads: 1")
                n += int(thr.split()[1])
    return n


def run(code: str, spec: CodeSpec, tier: str | None = None) -> GradeResult:
    """Grade one submission synchronously (blocks; the pool calls it from worker threads).

    Never raises for anything a submission does: a failure of the judge itself (a slot it cannot
    get, a clean-up that fails, a verdict it cannot build) is an ``internal_error`` verdict."""
    t0 = time.monotonic()
    chosen = tier or detect_tier()
    if chosen not in TIERS:
        raise ValueError(f"unknown tier {chosen!r}; expected one of {TIERS}")
    if chosen == "bwrap":
        ok, why = bwrap_status()
        if not ok:
            return _internal(spec, chosen, t0, f"the bwrap tier is not usable here: {why}")
    if not isinstance(code, str):
        return _internal(spec, chosen, t0, "submission must be text")
    if len(code.encode("utf-8", "surrogatepass")) > MAX_CODE:
        return GradeResult(RUNTIME_ERROR, 0, len(spec.tests), _skipped(spec), _ms(t0),
                           f"The submission is larger than {MAX_CODE // 1024} KiB.", chosen,
                           limit=f"source size {MAX_CODE // 1024} KiB")
    if spec.language == "sql":  # the query becomes a string in the judge's SQL program, never code
        code = _sql.program(code)
    try:
        with _slot() as uid:
            return _run_in_slot(code, spec, chosen, uid, t0)
    except SandboxError as e:
        return _internal(spec, chosen, t0, str(e))
    except OSError as e:
        return _internal(spec, chosen, t0, f"{type(e).__name__}: {e}")
    except Exception as e:  # the judge's own bug: never let it out of the judge, never lose the job
        _log.exception("sandbox run failed")
        return _internal(spec, chosen, t0, f"{type(e).__name__} in the judge")


def _ms(t0: float) -> int:
    return int((time.monotonic() - t0) * 1000)


def _skipped(spec: CodeSpec) -> tuple[TestResult, ...]:
    return tuple(TestResult(t.name, SKIPPED, 0.0, t.visible) for t in spec.tests)


def _internal(spec: CodeSpec, tier: str, t0: float, message: str) -> GradeResult:
    return GradeResult(INTERNAL_ERROR, 0, len(spec.tests), _skipped(spec), _ms(t0),
                       f"The judge failed: {message}", tier)


def _via_fd(path: str, keep_fds: list[int], reopen: list[tuple[int, str]] | None = None) -> str:
    """A path that works for any uid and under any mount: /proc/self/fd/N of an O_PATH descriptor.

    ``reopen`` collects (fd, path) for the rlimit tier's harness, which must replace each such
    descriptor by one opened in its own mount namespace before it hides anything: a descriptor of
    the judge's namespace leads, through ``..``, back to the judge's whole file system."""
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    keep_fds.append(fd)
    if reopen is not None:
        reopen.append((fd, path))
    return f"/proc/self/fd/{fd}"


def _run_in_slot(code: str, spec: CodeSpec, tier: str, uid: int | None, t0: float) -> GradeResult:
    lay = _python_layout()
    root = uid is not None
    isolated = tier == "rlimit" and root and isolation_status()[0]
    workdir: str | None = None
    last_run.uid = uid
    last_run.workdir = None
    last_run.isolated = isolated
    path_fds: list[int] = []
    sys_path = list(lay["site"])
    exe = lay["exe"]
    seccomp = _seccomp.program(allow_unix_sockets=tier == "bwrap") if seccomp_status()[0] else None
    seccomp_fd: int | None = None
    isolate: dict[str, Any] | None = None
    popen_user: dict[str, Any] = {}
    drop_to = (uid, uid) if uid is not None else None
    if tier == "bwrap":
        bw = _bwrap_path()
        assert bw is not None
        if seccomp is not None and bwrap_seccomp_status()[0]:
            seccomp_fd = os.memfd_create("onsite-seccomp", os.MFD_CLOEXEC)
            os.write(seccomp_fd, seccomp)
            os.lseek(seccomp_fd, 0, os.SEEK_SET)
        seccomp = None  # bwrap installs it before the interpreter starts
        prefix = _bwrap_args(bw, root=root, disk_bytes=DISK_MAX, seccomp_fd=seccomp_fd)
        cwd = "/"
        home = "/tmp"
    elif isolated:
        # Root: the harness enters new namespaces, hides private folders, then drops to the slot uid.
        # The interpreter and its packages are reached through descriptors, so hiding their folders is safe.
        prefix = []
        cwd, home = "/", "/tmp"
        reopen: list[tuple[int, str]] = []
        isolate = {"hide": _hidden_paths(), "tmpfs": _private_tmpfs(), "chdir": "/tmp", "reopen": reopen}
        if lay["real_exe"].startswith(lay["base"] + "/"):
            exe = _via_fd(lay["base"], path_fds, reopen) + "/" + os.path.relpath(lay["real_exe"], lay["base"])
        sys_path = [_via_fd(p, path_fds, reopen) for p in sys_path]
    else:
        prefix = []
        drop_to = None
        if uid is None:
            _shield_judge()
        workdir = tempfile.mkdtemp(prefix="run-", dir=_private_base())
        last_run.workdir = workdir
        home = cwd = workdir
        if uid is not None:
            os.chown(workdir, uid, uid)
            os.chmod(workdir, 0o700)
            popen_user = {"user": uid, "group": uid, "extra_groups": []}
            # The interpreter may live where an unprivileged uid cannot go (e.g. /root/.pyenv): reach it
            # through an inherited O_PATH descriptor, which skips the ancestors' permission checks.
            if not (_others_can_reach(lay["real_exe"]) and all(_others_can_reach(p) for p in sys_path)):
                if not lay["real_exe"].startswith(lay["base"] + "/"):
                    raise SandboxError("the interpreter is not reachable by the sandbox uid")
                exe = _via_fd(lay["base"], path_fds) + "/" + os.path.relpath(lay["real_exe"], lay["base"])
                sys_path = [p if _others_can_reach(p) else _via_fd(p, path_fds) for p in sys_path]
    nproc = NPROC if root else _own_process_count(os.geteuid()) + NPROC
    res_r, res_w = os.pipe2(os.O_CLOEXEC)
    in_r, in_w = os.pipe2(os.O_CLOEXEC)
    cfg_fd = os.memfd_create("onsite-config", os.MFD_CLOEXEC)
    child_fds = [res_w, in_r, cfg_fd, *path_fds, *([seccomp_fd] if seccomp_fd is not None else [])]
    open_fds = [res_r, in_w, *child_fds]
    proc: subprocess.Popen[bytes] | None = None
    state = _Run()
    visible = [n for n, t in enumerate(spec.tests) if t.visible]
    state.order = (*visible, *(n for n, t in enumerate(spec.tests) if not t.visible))
    state.hidden_from = len(visible)
    state.one_process = seccomp is not None or seccomp_fd is not None
    last_run.one_process = state.one_process
    out, err = _Stream(), _Stream()
    failure: BaseException | None = None
    try:
        os.write(cfg_fd, _build_config(code, spec, res_w, in_r, drop_to, seccomp, isolate, sys_path, nproc,
                                       path_fds))
        os.lseek(cfg_fd, 0, os.SEEK_SET)
        cmd = [*prefix, exe, "-I", "-S", "-c", _STUB, str(cfg_fd)]  # -S: no site, no .pth code runs
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=child_fds,
            cwd=cwd,
            env=_sandbox_env(home),
            start_new_session=True,
            close_fds=True,
            **popen_user,
        )
        for fd in child_fds:  # only the sandbox holds these now
            os.close(fd)
            open_fds.remove(fd)
        _pump(proc, res_r, in_w, spec, state, out, err, workdir)
    except BaseException as e:
        failure = e
    finally:
        exited_alone = proc is not None and _has_exited(proc.pid)
        try:
            if proc is not None:
                _kill_tree(proc)
                _reap(proc, state)
                assert proc.stdout is not None and proc.stderr is not None
                _drain(proc, res_r, state, out, err)
                proc.stdout.close()
                proc.stderr.close()
        finally:
            for fd in open_fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if uid is not None:
                # rlimit tier: setsid escapees survive the process group kill, so sweep the slot uid.
                # bwrap tier: when bwrap exits by itself its PID namespace is already gone; only after we
                # killed it is the namespace's teardown still in flight, so sweep then.
                if tier == "rlimit" or not exited_alone or state.killed_for is not None:
                    _kill_uid(uid)
                if tier == "rlimit" and not isolated:
                    _sweep_world_writable(uid)
            if workdir is not None:
                remove_tree(workdir)
    if failure is not None:
        raise failure
    return _verdict(spec, tier, state, out, err, t0)


def _pump(proc: subprocess.Popen[bytes], res_r: int, in_w: int, spec: CodeSpec, state: _Run,
          out: _Stream, err: _Stream, workdir: str | None) -> None:
    """Read the pipes and feed inputs until the harness exits or a limit is hit; holds no more than the caps.

    Test k+1's input is written only after result k arrived. Before the first hidden test's input goes
    out, whatever stdout/stderr already hold is read, and the streams stop keeping bytes from then on."""
    assert proc.stdout is not None and proc.stderr is not None
    sel = selectors.DefaultSelector()
    pidfd = os.pidfd_open(proc.pid)
    pending = bytearray()  # input bytes not yet written
    try:
        for f in (proc.stdout.fileno(), proc.stderr.fileno(), res_r, in_w):
            os.set_blocking(f, False)
        sel.register(proc.stdout.fileno(), selectors.EVENT_READ, out)
        sel.register(proc.stderr.fileno(), selectors.EVENT_READ, err)
        sel.register(res_r, selectors.EVENT_READ, "result")
        sel.register(pidfd, selectors.EVENT_READ, "exit")
        writing = False
        start = time.monotonic()
        buf = bytearray()
        result_bytes = 0
        next_disk_check = start + 0.1

        def send_next() -> None:
            k = state.sent
            if k >= len(state.order):
                return
            if k == state.hidden_from and out.cutoff is None:
                for stream in (out, err):
                    fd = proc.stdout.fileno() if stream is out else proc.stderr.fileno()  # type: ignore[union-attr]
                    _read_now(fd, stream)
                    stream.cutoff = stream.total
            pending.extend(_frame(spec.tests[state.order[k]]))
            state.sent_at[k] = time.monotonic()
            state.sent += 1

        while True:
            now = time.monotonic()
            if state.ready_at is None:
                deadline = start + STARTUP_S
            else:
                deadline = state.ready_at + spec.time_limit_s
            if now >= deadline:
                state.killed_for = "time"
                state.limit = (f"time {spec.time_limit_s:g} s (wall clock)" if state.ready_at is not None
                               else f"start-up {STARTUP_S:g} s")
                return
            timeout = deadline - now
            if workdir is not None:
                if now >= next_disk_check:
                    if _dir_usage(workdir) > DISK_MAX:
                        state.killed_for = "disk"
                        state.limit = f"disk {DISK_MAX // (1024 * 1024)} MB in the work directory"
                        return
                    next_disk_check = now + 0.1
                timeout = min(timeout, max(0.0, next_disk_check - now))
            if pending and not writing:
                sel.register(in_w, selectors.EVENT_WRITE, "input")
                writing = True
            for key, _ in sel.select(timeout):
                tag = key.data
                if tag == "exit":
                    return
                if tag == "input":
                    try:
                        n = os.write(in_w, pending[: 1 << 16])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        pending.clear()
                        n = 0
                    del pending[:n]
                    if not pending:
                        sel.unregister(in_w)
                        writing = False
                    continue
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(key.fd)
                    continue
                if tag == "result":
                    result_bytes += len(data)
                    if result_bytes > RESULT_MAX:
                        state.killed_for = "output"
                        state.limit = f"results {RESULT_MAX // (1024 * 1024)} MB"
                        return
                    buf += data
                    for obj in _parse_lines(buf, state):
                        if obj.get("loaded") is True and state.sent == 0:
                            send_next()
                        elif isinstance(obj.get("i"), int) and obj["i"] == state.sent - 1:
                            state.took_ms[obj["i"]] = (time.monotonic() - state.sent_at[obj["i"]]) * 1000
                            send_next()
                else:
                    tag.add(data)
                    if out.total + err.total > OUTPUT_MAX:
                        state.killed_for = "output"
                        state.limit = f"output {OUTPUT_MAX // 1024} KiB (stdout + stderr)"
                        return
    finally:
        sel.close()
        os.close(pidfd)


def _read_now(fd: int, stream: _Stream) -> None:
    """Whatever is already in a (non-blocking) pipe: what the harness flushed before its last result line."""
    while True:
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            return
        if not data:
            return
        stream.add(data)


def _parse_lines(buf: bytearray, state: _Run) -> list[dict[str, Any]]:
    """Decode the complete lines in buf (bounded: cmp.loads_line); returns the new objects."""
    new: list[dict[str, Any]] = []
    while True:
        nl = buf.find(b"\n")
        if nl < 0:
            return new
        raw = bytes(buf[:nl])
        del buf[: nl + 1]
        try:
            obj, values = cmp.loads_line(raw, budget=cmp.MAX_VALUES - state.values)
        except cmp.DecodeError:
            state.tampered = True
            continue
        state.values += values
        if not isinstance(obj, dict):
            state.tampered = True
            continue
        if obj.get("ready") is True and state.ready_at is None:
            state.ready_at = time.monotonic()
        state.lines.append(obj)
        new.append(obj)


def _has_exited(pid: int) -> bool:
    """Whether our child has exited, without reaping it (wait4 reads its status and CPU time later)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _reap(proc: subprocess.Popen[bytes], state: _Run) -> None:
    """wait4 the sandbox: its exit status and the CPU time of everything it reaped (the harness)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            state.returncode = proc.returncode
            return
        if pid == proc.pid:
            state.returncode = proc.returncode = os.waitstatus_to_exitcode(status)
            state.cpu_s = usage.ru_utime + usage.ru_stime
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.001)


def _drain(proc: subprocess.Popen[bytes], res_r: int, state: _Run, out: _Stream, err: _Stream) -> None:
    """Collect what is still buffered in the pipes; escaped writers are dead, so EOF comes quickly."""
    assert proc.stdout is not None and proc.stderr is not None
    fds = {proc.stdout.fileno(): out, proc.stderr.fileno(): err, res_r: None}
    buf = bytearray()
    deadline = time.monotonic() + 0.5
    result_bytes = 0
    while fds and time.monotonic() < deadline:
        for fd in list(fds):
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                fds.pop(fd)
                continue
            if not data:
                fds.pop(fd)
                continue
            target = fds[fd]
            if target is None:
                result_bytes += len(data)
                if result_bytes <= RESULT_MAX:
                    buf += data
            elif out.total + err.total <= OUTPUT_MAX:
                target.add(data)
            else:
                target.total += len(data)
        if fds:
            time.sleep(0.001)
    if buf:
        _parse_lines(buf, state)


def _fmt_call(entry: str, args: Any, kwargs: Any) -> str:
    parts = [cmp._repr(a) for a in args] + [f"{k}={cmp._repr(v)}" for k, v in dict(kwargs).items()]
    text = f"{entry}({', '.join(parts)})"
    return text if len(text) <= 300 else text[:297] + "..."


_BUILTIN_EXCEPTIONS = frozenset(
    name for name, obj in vars(__import__("builtins")).items() if isinstance(obj, type) and issubclass(obj, BaseException)
)


def _ended(spec: CodeSpec, tier: str, st: _Run) -> tuple[str, str, str | None] | None:
    """How the process ended, when that (not a result line) is the verdict: (verdict, message, limit).

    wait4 gives the status and the CPU time the sandbox used. A CPU limit is reported only when the
    CPU time shows it was reached: os._exit(152) after 0.2 s is an exit, not SIGXCPU. In the bwrap
    tier bwrap reports a signal N as exit status 128 + N, so a status above 128 is named both ways."""
    soft = _cpu_soft(spec)
    rc = st.returncode
    reached_cpu = st.cpu_s is not None and st.cpu_s >= soft - 0.05
    if st.killed_for == "time":
        return TIME_LIMIT, f"Time limit exceeded ({st.limit}).", st.limit
    if st.killed_for in ("output", "disk"):
        return OUTPUT_LIMIT, f"Output limit exceeded ({st.limit}).", st.limit
    if rc is None or rc == 0:
        return None
    if tier == "rlimit" and rc < 0:
        sig, ambiguous = -rc, False
    elif tier == "bwrap" and rc > 128 and (rc - 128) in _SIGNAMES:
        sig, ambiguous = rc - 128, True
    else:
        return None
    if sig in (signal.SIGXCPU, signal.SIGKILL) and reached_cpu:
        lim = f"CPU time {soft} s"
        return TIME_LIMIT, f"Time limit exceeded ({lim}).", lim
    name = _SIGNAMES.get(sig, f"signal {sig}")
    if ambiguous:
        return CRASHED, f"The process ended with status {rc}: killed by {name}, or it exited with that code.", None
    return CRASHED, f"The process was killed by {name}.", None


def _verdict(spec: CodeSpec, tier: str, st: _Run, out: _Stream, err: _Stream, t0: float) -> GradeResult:
    total = len(spec.tests)
    lines = st.lines
    tests: list[TestResult] = []
    passed = 0
    first_fail: tuple[str, str] | None = None  # (verdict, message)
    process_limit: str | None = None  # "processes N" when the first failure is a refused fork/thread
    by_test: dict[int, dict[str, Any]] = {}  # index in spec.tests -> its result line
    ms_of: dict[int, float] = {}
    syntax: Any = None
    load_err: Any = None
    done = False
    got_lines = 0
    # The harness speaks in exactly this order: ready, then syntax | load_err | (loaded, 0..n-1, done).
    # Anything else means the submission wrote to the result pipe itself.
    phase = "start"
    for o in lines:
        if phase == "start" and o.get("ready") is True:
            phase = "ready"
        elif phase == "ready" and "syntax" in o:
            syntax, phase = o["syntax"], "end"
        elif phase == "ready" and "load_err" in o:
            load_err, phase = o["load_err"], "end"
        elif phase == "ready" and o.get("loaded") is True:
            phase = "tests"
        elif phase == "tests" and o.get("i") == got_lines and got_lines < total and _test_line_ok(o):
            n = st.order[got_lines]
            by_test[n] = o
            # a hidden test's time is the parent's own measure (a forged "ms" could carry data), in ms
            ms_of[n] = (float(o["ms"]) if spec.tests[n].visible
                        else float(round(st.took_ms.get(got_lines, 0.0))))
            got_lines += 1
        elif phase == "tests" and o.get("done") is True and got_lines == total:
            done, phase = True, "end"
        else:
            st.tampered = True
            break
    if st.tampered:
        return GradeResult(RUNTIME_ERROR, 0, total, _skipped(spec), _ms(t0),
                           "The submission wrote to the judge's result channel; nothing it reported counts.",
                           tier, out.text(), err.text(), None)
    in_hidden = got_lines >= st.hidden_from and st.sent > st.hidden_from  # stopped during a hidden test

    def mk(verdict: str, message: str, limit: str | None = None, tests_: list[TestResult] | None = None) -> GradeResult:
        return GradeResult(verdict, passed, total, tuple(tests_ if tests_ is not None else tests), _ms(t0),
                           message, tier, out.text(), err.text(), limit)

    if isinstance(syntax, dict):
        msg = f"SyntaxError: {syntax.get('msg')} (line {syntax.get('line')})"
        text = str(syntax.get("text") or "").rstrip()
        if text:
            msg += f"\n    {text.strip()}"
        return mk(SYNTAX_ERROR, msg, tests_=list(_skipped(spec)))
    if isinstance(load_err, dict):  # before any input was sent: full detail
        v = MEMORY_LIMIT if load_err.get("kind") == "memory" else RUNTIME_ERROR
        return mk(v, "While loading the submission: " + _error_text(load_err, spec, st.one_process),
                  limit=f"memory {spec.memory_mb} MB" if v == MEMORY_LIMIT else _process_limit(load_err, st.one_process),
                  tests_=list(_skipped(spec)))

    stopped_reason = _ended(spec, tier, st)
    if stopped_reason is not None and stopped_reason[0] == CRASHED and in_hidden:
        # the submission chooses the signal it dies of or the status it exits with: bits of a hidden input
        stopped_reason = (CRASHED, "The process was killed by a signal, or exited with a status that looks like "
                          "one, during a hidden test (details of hidden tests are not shown).", None)
    if stopped_reason is None and not done:
        kinds = [next(iter(o)) for o in lines if o]
        if "ready" not in kinds:
            stopped_reason = (INTERNAL_ERROR, "The judge's harness did not start: "
                              + err.text()[-500:].strip(), None)
        elif not in_hidden and any(w in err.text().lower()
                                   for w in ("memory allocation", "cannot allocate memory", "memoryerror")):
            last = err.text().strip().splitlines()[-1][:200]
            stopped_reason = (MEMORY_LIMIT, f"The process ran out of memory (limit {spec.memory_mb} MB): {last}",
                              f"memory {spec.memory_mb} MB")
        elif in_hidden:  # its exit code could carry a byte of a hidden input: not shown
            stopped_reason = (RUNTIME_ERROR, "The submission exited during a hidden test, before the tests "
                              "finished (sys.exit or os._exit?).", None)
        else:
            stopped_reason = (RUNTIME_ERROR, f"The submission exited (code {st.returncode}) before the tests "
                              "finished (sys.exit or os._exit?).", None)

    running = st.order[got_lines] if got_lines < len(st.order) else None  # the test the run stopped in
    for n, t in enumerate(spec.tests):
        o = by_test.get(n)
        vis = t.visible
        if o is None:
            if stopped_reason is not None and n == running:
                v, m, _ = stopped_reason
                tests.append(TestResult(t.name, v, 0.0, vis, t.args if vis else None,
                                        t.expected if vis else None, None, m))
                if first_fail is None:
                    first_fail = (v, _where(t, n, total) + ": " + m)
            else:
                tests.append(TestResult(t.name, SKIPPED, 0.0, vis))
            continue
        ms = ms_of[n]
        if o.get("ok") is True and "v" in o:
            got = o["v"]
            outcome = cmp.compare(got, t.expected, spec.compare, spec.tolerance)
            if outcome.ok:
                passed += 1
                tests.append(TestResult(t.name, ACCEPTED, ms, vis, t.args if vis else None,
                                        t.expected if vis else None, got if vis else None))
                continue
            if vis:
                call = "the query" if spec.language == "sql" else _fmt_call(spec.entry, t.args, t.kwargs)
                msg = f"Wrong answer on test {t.name!r}: {call} should return {_short(t.expected)}, got {_short(got)}"
                if outcome.detail and not outcome.detail.startswith("result: expected"):
                    msg += f" ({outcome.detail})"
            else:
                msg = f"Wrong answer on a hidden test (test {n + 1} of {total})."
                if isinstance(got, cmp.Opaque):
                    msg += " It returned something that is not plain data; return plain data instead."
            tests.append(TestResult(t.name, WRONG_ANSWER, ms, vis, t.args if vis else None,
                                    t.expected if vis else None, got if vis else None, msg))
            if first_fail is None:
                first_fail = (WRONG_ANSWER, msg)
        else:
            e = o.get("err") if isinstance(o.get("err"), dict) else {}
            assert isinstance(e, dict)
            v = MEMORY_LIMIT if e.get("kind") == "memory" else RUNTIME_ERROR
            if vis:
                msg = _where(t, n, total) + ": " + _error_text(e, spec, st.one_process)
            else:  # the exception's type and the test's number, nothing the submission wrote
                name = str(e.get("type") or "")
                shown = name if name in _BUILTIN_EXCEPTIONS else "an exception of its own class"
                msg = _where(t, n, total) + f": {shown} (details of hidden tests are not shown)"
            if v == MEMORY_LIMIT:
                msg += f" (memory limit {spec.memory_mb} MB)"
            if not vis:
                msg += _process_note(e, st.one_process)
            tests.append(TestResult(t.name, v, ms, vis, t.args if vis else None,
                                    t.expected if vis else None, None, msg))
            if first_fail is None:
                first_fail = (v, msg)
                process_limit = _process_limit(e, st.one_process)

    if first_fail is None and stopped_reason is not None:
        first_fail = (stopped_reason[0], stopped_reason[1])
    if first_fail is None:
        return mk(ACCEPTED, f"All {total} tests passed.")
    v, m = first_fail
    limit = None
    if stopped_reason is not None and v == stopped_reason[0]:
        limit = stopped_reason[2]
    if v == MEMORY_LIMIT:
        limit = f"memory {spec.memory_mb} MB"
    return mk(v, m, limit or process_limit)


def _test_line_ok(o: dict[str, Any]) -> bool:
    """The shape the harness writes for one test: {"i": int, "ms": number, "ok": true, "v": ...} or
    {"i", "ms", "ok": false, "err": {...}}. Any other shape was written by the submission: the verdict
    says so (it is not the judge's fault, so never an internal_error)."""
    i, ms, ok = o.get("i"), o.get("ms"), o.get("ok")
    if type(i) is not int or not (type(ms) is int or type(ms) is float) or not 0 <= ms <= 1e9:  # NaN: not in range
        return False
    return (ok is True and "v" in o) or (ok is False and isinstance(o.get("err"), dict))


def _process_note(e: dict[str, Any], one_process: bool) -> str:
    """What a refused fork or thread means: the run reached its process limit (it is not a crash).
    With the seccomp filter a run is one process (its threads share one memory limit)."""
    if e.get("kind") != "processes":
        return ""
    if one_process:
        return f" (the process limit: a run is one process, which cannot start others, with at most {NPROC} threads)"
    return f" (the process limit: at most {NPROC} processes and threads per run)"


def _process_limit(e: dict[str, Any], one_process: bool) -> str | None:
    if e.get("kind") != "processes":
        return None
    return f"processes 1, threads {NPROC}" if one_process else f"processes {NPROC}"


def _where(t: Any, n: int, total: int) -> str:
    return f"On test {t.name!r}" if t.visible else f"On a hidden test (test {n + 1} of {total})"


def _short(x: Any, limit: int = 200) -> str:
    text = cmp._repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_text(e: dict[str, Any], spec: CodeSpec, one_process: bool) -> str:
    name = str(e.get("type") or "Exception")
    msg = str(e.get("msg") or "")
    kind = e.get("kind")
    if kind == "exit":
        head = f"the submission called sys.exit({msg})" if msg else "the submission called sys.exit()"
    else:
        head = (f"{name}: {msg}" if msg else name) + _process_note(e, one_process)
    tb = str(e.get("tb") or "") if spec.language != "sql" else ""  # a query's error is its message alone
    if tb:
        head += "\nTraceback (your code):\n" + tb
    return head


__all__ = ["TIERS", "SandboxError", "bwrap_status", "capabilities", "detect_tier", "keep_private", "remove_tree", "run"]
