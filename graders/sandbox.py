"""Run one submission in a fresh, limited, isolated interpreter and turn what happened into a verdict.

Two tiers (see graders/README.md for exactly what each protects against):

* ``bwrap``: bubblewrap with new PID, network, IPC, UTS and mount namespaces; a read-only view of
  only the interpreter, its site-packages and /usr; a size-limited private tmpfs as the only
  writable place; ``--die-with-parent`` and ``--new-session``. Plus everything the rlimit tier does.
* ``rlimit``: resource limits, a new session, a private work directory, an seccomp filter that
  denies sockets, and (when the judge runs as root) a dedicated unprivileged uid per concurrent slot.

In both tiers the harness (``graders/harness.py``, trusted) applies the rlimits and drops to the slot
uid before it reads the submission. Inputs travel into the sandbox through a memfd; expected outputs
never do. Results come back as JSON lines on a dedicated pipe; stdout/stderr are read incrementally
with a hard cap so the judge's memory stays bounded. At the end the whole process tree is killed:
the process group, then (as root) every process still running as the slot uid, which catches
children that called ``setsid``; in the bwrap tier the PID namespace dies with it as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
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
FILE_MAX = 16 * 1024 * 1024  # RLIMIT_FSIZE
NPROC = 16  # RLIMIT_NPROC: processes + threads of the slot uid
NOFILE = 128
AS_HEADROOM_MB = 256  # RLIMIT_AS = memory_mb + this (code, shared libraries, shared mappings)
STARTUP_S = 10.0  # generous: how long the interpreter may take to reach the harness
MAX_CODE = 2 * 1024 * 1024
SLOT_UID_BASE = 61000
SLOT_COUNT = 64
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")

_HARNESS_SRC = (Path(__file__).parent / "harness.py").read_text(encoding="utf-8")
_HARNESS_CODE = compile(_HARNESS_SRC, "onsite_harness.py", "exec", dont_inherit=True)

_SIGNAMES = {int(s): s.name for s in signal.Signals}


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


def _bwrap_args(bwrap: str, *, root: bool, disk_bytes: int) -> list[str]:
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
    args += ["--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp"]
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


@contextlib.contextmanager
def _slot(timeout_s: float = 60.0) -> Iterator[int | None]:
    """Hold one slot uid exclusively across processes (flock), or None when not root."""
    if not _is_root():
        yield None
        return
    locks = _private_base() / "slots"
    with contextlib.suppress(FileExistsError):
        os.mkdir(locks, 0o700)
    deadline = time.monotonic() + timeout_s
    start = int.from_bytes(os.urandom(2), "little") % SLOT_COUNT
    while True:
        for k in range(SLOT_COUNT):
            n = (start + k) % SLOT_COUNT
            fd = os.open(locks / f"{n}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            uid = SLOT_UID_BASE + n
            if not _uid_clear(uid):  # a previous holder's processes are not all gone yet: try another slot
                os.close(fd)
                continue
            try:
                yield uid
            finally:
                os.close(fd)
            return
        if time.monotonic() > deadline:
            raise SandboxError("no free sandbox slot")
        time.sleep(0.02)


def _proc_uid_state(pid: str) -> tuple[int, str] | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            data = f.read(4096)
    except OSError:
        return None
    uid = -1
    state = "?"
    for line in data.split(b"\n"):
        if line.startswith(b"State:"):
            state = line.split()[1].decode()
        elif line.startswith(b"Uid:"):
            uid = int(line.split()[1])  # real uid: what RLIMIT_NPROC and kill(2) permission follow
            break
    return uid, state


def _uid_pids(uid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process whose real uid is ``uid`` (what RLIMIT_NPROC counts)."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    out = []
    for pid in pids:
        info = _proc_uid_state(pid)
        if info is not None and info[0] == uid:
            out.append((int(pid), info[1]))
    return out


def _kill_uid(uid: int) -> int:
    """SIGKILL every live process whose real uid is ``uid``, until none is left; returns how many."""
    killed = 0
    for _ in range(200):
        live = [pid for pid, state in _uid_pids(uid) if state not in ("Z", "X")]
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


def _sweep_world_writable(uid: int) -> None:
    """Remove what the slot uid left in shared writable directories (rlimit tier only)."""
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
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(e.path)  # fd-based on Linux: does not follow symlinks
                else:
                    os.unlink(e.path)


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

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = OUTPUT_KEEP - len(self.keep)
        if room > 0:
            self.keep += data[:room]

    def text(self) -> str:
        s = bytes(self.keep).decode("utf-8", "replace").replace("\x00", "\\x00")
        if self.total > len(self.keep):
            s += f"\n[... output truncated: {self.total} bytes in total, first {len(self.keep)} shown]"
        return s


@dataclass
class _Run:
    lines: list[Any] = field(default_factory=list)
    ready_at: float | None = None
    killed_for: str | None = None
    limit: str | None = None
    tampered: bool = False
    returncode: int | None = None


def _build_config(code: str, spec: CodeSpec, result_fd: int, drop_to: tuple[int, int] | None,
                  deny_sockets: bool, sys_path: list[str], nproc: int, keep_fds: list[int]) -> bytes:
    mem = spec.memory_mb * 1024 * 1024
    cpu = math.ceil(spec.time_limit_s) + 1
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
        "rlimits": rlimits,
        "drop_to": drop_to,
        "deny_sockets": deny_sockets,
        "sys_path": sys_path,
        "keep_fds": keep_fds,
        "code": code,
        "entry": spec.entry,
        "tests": [(marshal.dumps(tuple(t.args)), marshal.dumps(dict(t.kwargs))) for t in spec.tests],
    }
    return marshal.dumps((_HARNESS_CODE, cfg))


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
    """Grade one submission synchronously (blocks; the pool calls it from worker threads)."""
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
    try:
        with _slot() as uid:
            return _run_in_slot(code, spec, chosen, uid, t0)
    except SandboxError as e:
        return _internal(spec, chosen, t0, str(e))
    except OSError as e:
        return _internal(spec, chosen, t0, f"{type(e).__name__}: {e}")


def _ms(t0: float) -> int:
    return int((time.monotonic() - t0) * 1000)


def _skipped(spec: CodeSpec) -> tuple[TestResult, ...]:
    return tuple(TestResult(t.name, SKIPPED, 0.0, t.visible) for t in spec.tests)


def _internal(spec: CodeSpec, tier: str, t0: float, message: str) -> GradeResult:
    return GradeResult(INTERNAL_ERROR, 0, len(spec.tests), _skipped(spec), _ms(t0),
                       f"The judge failed: {message}", tier)


def _run_in_slot(code: str, spec: CodeSpec, tier: str, uid: int | None, t0: float) -> GradeResult:
    lay = _python_layout()
    root = uid is not None
    workdir: str | None = None
    last_run.uid = uid
    last_run.workdir = None
    keep_fds: list[int] = []
    sys_path = list(lay["site"])
    exe = lay["exe"]
    if tier == "bwrap":
        bw = _bwrap_path()
        assert bw is not None
        prefix = _bwrap_args(bw, root=root, disk_bytes=DISK_MAX)
        cwd = "/"
        home = "/tmp"
        drop_to = (uid, uid) if uid is not None else None
        popen_user: dict[str, Any] = {}
    else:
        prefix = []
        if uid is None:
            _shield_judge()
        workdir = tempfile.mkdtemp(prefix="run-", dir=_private_base())
        last_run.workdir = workdir
        home = cwd = workdir
        drop_to = None
        popen_user = {}
        if uid is not None:
            os.chown(workdir, uid, uid)
            os.chmod(workdir, 0o700)
            popen_user = {"user": uid, "group": uid, "extra_groups": []}
            # The interpreter may live where an unprivileged uid cannot go (e.g. /root/.pyenv): reach it
            # through an inherited O_PATH descriptor, which skips the ancestors' permission checks.
            if not (_others_can_reach(lay["real_exe"]) and all(_others_can_reach(p) for p in sys_path)):
                if not lay["real_exe"].startswith(lay["base"] + "/"):
                    raise SandboxError("the interpreter is not reachable by the sandbox uid")
                fd = os.open(lay["base"], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                keep_fds.append(fd)
                exe = f"/proc/self/fd/{fd}/" + os.path.relpath(lay["real_exe"], lay["base"])
                new_path = []
                for p in sys_path:
                    if _others_can_reach(p):
                        new_path.append(p)
                    else:
                        pfd = os.open(p, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                        keep_fds.append(pfd)
                        new_path.append(f"/proc/self/fd/{pfd}")
                sys_path = new_path
    nproc = NPROC if root else _own_process_count(os.geteuid()) + NPROC
    res_r, res_w = os.pipe2(os.O_CLOEXEC)
    cfg_fd = os.memfd_create("onsite-config", os.MFD_CLOEXEC)
    keep_fds += [res_r, res_w, cfg_fd]
    proc: subprocess.Popen[bytes] | None = None
    state = _Run()
    out, err = _Stream(), _Stream()
    try:
        path_fds = keep_fds[:-3]
        os.write(cfg_fd, _build_config(code, spec, res_w, drop_to, tier == "rlimit", sys_path, nproc, path_fds))
        os.lseek(cfg_fd, 0, os.SEEK_SET)
        cmd = [*prefix, exe, "-I", "-c", _STUB, str(cfg_fd)]
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=[res_w, cfg_fd, *path_fds],
            cwd=cwd,
            env=_sandbox_env(home),
            start_new_session=True,
            close_fds=True,
            **popen_user,
        )
        os.close(res_w)
        keep_fds.remove(res_w)
        os.close(cfg_fd)
        keep_fds.remove(cfg_fd)
        _pump(proc, res_r, spec, state, out, err, workdir)
    finally:
        exited_alone = proc is not None and proc.poll() is not None
        if proc is not None:
            _kill_tree(proc)
            state.returncode = _reap(proc)
            assert proc.stdout is not None and proc.stderr is not None
            _drain(proc, res_r, state, out, err)
            proc.stdout.close()
            proc.stderr.close()
        for fd in keep_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        if uid is not None:
            # rlimit tier: setsid escapees survive the process group kill, so sweep the slot uid.
            # bwrap tier: when bwrap exits by itself its PID namespace is already gone; only after we
            # killed it is the namespace's teardown still in flight, so sweep then.
            if tier == "rlimit" or not exited_alone or state.killed_for is not None:
                _kill_uid(uid)
            if tier == "rlimit":
                _sweep_world_writable(uid)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    return _verdict(spec, tier, state, out, err, t0)


def _pump(proc: subprocess.Popen[bytes], res_r: int, spec: CodeSpec, state: _Run,
          out: _Stream, err: _Stream, workdir: str | None) -> None:
    """Read all three pipes until the harness exits or a limit is hit; never holds more than the caps."""
    assert proc.stdout is not None and proc.stderr is not None
    sel = selectors.DefaultSelector()
    pidfd = os.pidfd_open(proc.pid)
    try:
        for f in (proc.stdout.fileno(), proc.stderr.fileno(), res_r):
            os.set_blocking(f, False)
        sel.register(proc.stdout.fileno(), selectors.EVENT_READ, out)
        sel.register(proc.stderr.fileno(), selectors.EVENT_READ, err)
        sel.register(res_r, selectors.EVENT_READ, "result")
        sel.register(pidfd, selectors.EVENT_READ, "exit")
        start = time.monotonic()
        buf = bytearray()
        result_bytes = 0
        next_disk_check = start + 0.1
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
            for key, _ in sel.select(timeout):
                tag = key.data
                if tag == "exit":
                    return
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
                    _parse_lines(buf, state)
                else:
                    tag.add(data)
                    if out.total + err.total > OUTPUT_MAX:
                        state.killed_for = "output"
                        state.limit = f"output {OUTPUT_MAX // 1024} KiB (stdout + stderr)"
                        return
    finally:
        sel.close()
        os.close(pidfd)


def _parse_lines(buf: bytearray, state: _Run) -> None:
    while True:
        nl = buf.find(b"\n")
        if nl < 0:
            return
        raw = bytes(buf[:nl])
        del buf[: nl + 1]
        try:
            obj = cmp.loads_line(raw)
        except (ValueError, RecursionError):
            state.tampered = True
            continue
        if not isinstance(obj, dict):
            state.tampered = True
            continue
        if obj.get("ready") is True and state.ready_at is None:
            state.ready_at = time.monotonic()
        state.lines.append(obj)


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _reap(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return None


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


def _signal_of(rc: int | None, tier: str) -> int | None:
    if rc is None:
        return None
    if rc < 0:
        return -rc
    if tier == "bwrap" and rc > 128 and (rc - 128) in _SIGNAMES:
        return rc - 128  # bwrap reports a signalled child as 128 + signal
    return None


def _fmt_call(entry: str, args: Any, kwargs: Any) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in dict(kwargs).items()]
    text = f"{entry}({', '.join(parts)})"
    return text if len(text) <= 300 else text[:297] + "..."


def _verdict(spec: CodeSpec, tier: str, st: _Run, out: _Stream, err: _Stream, t0: float) -> GradeResult:
    total = len(spec.tests)
    lines = st.lines
    kinds = [next(iter(o)) for o in lines if o]
    tests: list[TestResult] = []
    passed = 0
    first_fail: tuple[str, str] | None = None  # (verdict, message)
    got_by_index: dict[int, dict[str, Any]] = {}
    syntax: Any = None
    load_err: Any = None
    done = False
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
        elif phase == "tests" and "i" in o and o.get("i") == len(got_by_index) and len(got_by_index) < total:
            got_by_index[len(got_by_index)] = o
        elif phase == "tests" and o.get("done") is True and len(got_by_index) == total:
            done, phase = True, "end"
        else:
            st.tampered = True
            break
    if st.tampered:
        return GradeResult(RUNTIME_ERROR, 0, total, _skipped(spec), _ms(t0),
                           "The submission wrote to the judge's result channel; nothing it reported counts.",
                           tier, out.text(), err.text(), None)

    def mk(verdict: str, message: str, limit: str | None = None, tests_: list[TestResult] | None = None) -> GradeResult:
        return GradeResult(verdict, passed, total, tuple(tests_ if tests_ is not None else tests), _ms(t0),
                           message, tier, out.text(), err.text(), limit)

    if isinstance(syntax, dict):
        msg = f"SyntaxError: {syntax.get('msg')} (line {syntax.get('line')})"
        text = str(syntax.get("text") or "").rstrip()
        if text:
            msg += f"\n    {text.strip()}"
        return mk(SYNTAX_ERROR, msg, tests_=list(_skipped(spec)))
    if isinstance(load_err, dict):
        v = MEMORY_LIMIT if load_err.get("kind") == "memory" else RUNTIME_ERROR
        return mk(v, "While loading the submission: " + _error_text(load_err, spec),
                  limit=f"memory {spec.memory_mb} MB" if v == MEMORY_LIMIT else None,
                  tests_=list(_skipped(spec)))

    stopped_reason: tuple[str, str, str | None] | None = None  # verdict, message, limit
    sig = _signal_of(st.returncode, tier)
    if st.killed_for == "time":
        stopped_reason = (TIME_LIMIT, f"Time limit exceeded ({st.limit}).", st.limit)
    elif st.killed_for in ("output", "disk"):
        stopped_reason = (OUTPUT_LIMIT, f"Output limit exceeded ({st.limit}).", st.limit)
    elif sig == signal.SIGXCPU or (sig == signal.SIGKILL and st.killed_for is None and _cpu_hint(spec, t0)):
        lim = f"CPU time {math.ceil(spec.time_limit_s) + 1} s"
        stopped_reason = (TIME_LIMIT, f"Time limit exceeded ({lim}).", lim)
    elif sig is not None:
        name = _SIGNAMES.get(sig, f"signal {sig}")
        stopped_reason = (CRASHED, f"The process was killed by {name}.", None)
    elif not done:
        if "ready" not in kinds:
            stopped_reason = (INTERNAL_ERROR, "The judge's harness did not start: "
                              + err.text()[-500:].strip(), None)
        elif any(w in err.text().lower() for w in ("memory allocation", "cannot allocate memory", "memoryerror")):
            last = err.text().strip().splitlines()[-1][:200]
            stopped_reason = (MEMORY_LIMIT, f"The process ran out of memory (limit {spec.memory_mb} MB): {last}",
                              f"memory {spec.memory_mb} MB")
        else:
            stopped_reason = (RUNTIME_ERROR, f"The submission exited (code {st.returncode}) before the tests "
                              "finished (sys.exit or os._exit?).", None)

    for n, t in enumerate(spec.tests):
        o = got_by_index.get(n)
        vis = t.visible
        if o is None:
            if stopped_reason is not None and first_fail is None:
                v, m, _ = stopped_reason
                tests.append(TestResult(t.name, v, 0.0, vis, t.args if vis else None,
                                        t.expected if vis else None, None, m))
                first_fail = (v, _where(t, n, total) + ": " + m)
            else:
                tests.append(TestResult(t.name, SKIPPED, 0.0, vis))
            continue
        ms = float(o.get("ms") or 0.0)
        if o.get("ok") is True and "v" in o:
            got = o["v"]
            outcome = cmp.compare(got, t.expected, spec.compare, spec.tolerance)
            if outcome.ok:
                passed += 1
                tests.append(TestResult(t.name, ACCEPTED, ms, vis, t.args if vis else None,
                                        t.expected if vis else None, got if vis else None))
                continue
            if vis:
                msg = (f"Wrong answer on test {t.name!r}: {_fmt_call(spec.entry, t.args, t.kwargs)} "
                       f"should return {_short(t.expected)}, got {_short(got)}")
                if outcome.detail and not outcome.detail.startswith("result: expected"):
                    msg += f" ({outcome.detail})"
            else:
                msg = f"Wrong answer on a hidden test (test {n + 1} of {total})."
                if isinstance(got, cmp.Opaque):
                    msg += f" It returned {got.text}; return plain data instead."
            tests.append(TestResult(t.name, WRONG_ANSWER, ms, vis, t.args if vis else None,
                                    t.expected if vis else None, got if vis else None, msg))
            if first_fail is None:
                first_fail = (WRONG_ANSWER, msg)
        else:
            e = o.get("err") if isinstance(o.get("err"), dict) else {}
            assert isinstance(e, dict)
            v = MEMORY_LIMIT if e.get("kind") == "memory" else RUNTIME_ERROR
            msg = _where(t, n, total) + ": " + _error_text(e, spec)
            if v == MEMORY_LIMIT:
                msg += f" (memory limit {spec.memory_mb} MB)"
            tests.append(TestResult(t.name, v, ms, vis, t.args if vis else None,
                                    t.expected if vis else None, None, msg))
            if first_fail is None:
                first_fail = (v, msg)

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
    return mk(v, m, limit)


def _cpu_hint(spec: CodeSpec, t0: float) -> bool:
    # A SIGKILL we did not send after at least the CPU budget of wall time is the RLIMIT_CPU hard limit.
    return time.monotonic() - t0 >= math.ceil(spec.time_limit_s) + 1


def _where(t: Any, n: int, total: int) -> str:
    return f"On test {t.name!r}" if t.visible else f"On a hidden test (test {n + 1} of {total})"


def _short(x: Any, limit: int = 200) -> str:
    text = repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_text(e: dict[str, Any], spec: CodeSpec) -> str:
    name = str(e.get("type") or "Exception")
    msg = str(e.get("msg") or "")
    kind = e.get("kind")
    if kind == "exit":
        head = f"the submission called sys.exit({msg})" if msg else "the submission called sys.exit()"
    else:
        head = f"{name}: {msg}" if msg else name
    tb = str(e.get("tb") or "")
    if tb:
        head += "\nTraceback (your code):\n" + tb
    return head


__all__ = ["TIERS", "SandboxError", "bwrap_status", "detect_tier", "run"]
