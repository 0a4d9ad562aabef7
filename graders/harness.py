"""Runs INSIDE the sandbox: isolate, apply limits, load the submission, call the entry once per input.

``graders.sandbox`` compiles this file once, and each sandbox runs ``python -I -c STUB CONFIG_FD``
where the stub reads ``(code object, config)`` with marshal from the inherited memfd and calls
``run(config)``, so no sandbox pays for compiling it. It imports nothing from ``graders``. It is trusted code
that runs before any submission code: in the rlimit tier as root it first enters new mount, IPC and
network namespaces that hide the bank, the repository and the bot's home and give the run private
temp dirs; then it applies the resource limits, drops privileges and installs the seccomp filter
(the bwrap tier gets the same filter from bwrap) before it reads the submission.

Test inputs arrive one at a time on a dedicated pipe (4-byte length, then the marshalled
``(args, kwargs)``): the parent sends test k+1 only after result k, so while the submission runs no
later test's input exists in this process, and the harness keeps no reference to earlier ones.
Results go out as one JSON object per line on another pipe, never on stdout. The submission runs in
the same process and *can* write to that pipe too; that is fine, because the expected outputs never
enter the sandbox and the verdict is computed by the parent from decoded plain data, with the depth,
size and count of what it decodes bounded. A forged line can at most claim a value the submission
could have returned. stdout and stderr are flushed after every test so that the parent can tell what
was printed before the first hidden test (shown to the member) from what came after (never shown).

Start-up cost matters (the judge's goal is within 1.5x of ``python -I -c pass``), so this module
imports only builtin or tiny modules: no json, no traceback, no numpy unless the submission did.
"""

# ruff: noqa: UP031  (%-formatting on purpose: this runs in every sandbox and must start fast)
from __future__ import annotations

import errno
import marshal
import os
import sys
import time
from _json import encode_basestring_ascii as _jstr  # C accelerator; `import json` costs ~2 ms

TYPE_CHECKING = False  # `import typing` costs ~2 ms; mypy still reads the block below
if TYPE_CHECKING:
    from typing import Any


SUBMISSION_FILE = "submission.py"
MAX_DEPTH = 64
MAX_MSG = 2000

_out_fd = -1
_harness_pid = -1
_reserve: bytearray | None = None


def _emit(line: str) -> None:
    if os.getpid() != _harness_pid:  # a process the submission forked came back here: it reports nothing
        os._exit(0)
    data = (line + "\n").encode("ascii", "backslashreplace")
    view = memoryview(data)
    while view:
        n = os.write(_out_fd, view)
        view = view[n:]


def _encode(x: Any, out: list, depth: int, np: Any) -> None:
    """Plain-data JSON encoder; anything unknown becomes an opaque {"$repr"} that never compares equal."""
    if depth > MAX_DEPTH:
        raise ValueError("result is nested too deeply (more than %d levels)" % MAX_DEPTH)
    t = type(x)
    if x is None:
        out.append("null")
    elif t is bool:
        out.append("true" if x else "false")
    elif t is int:
        out.append(int.__repr__(x))
    elif t is float:
        _float(x, out)
    elif t is str:
        out.append(_jstr(x))
    elif t is list or t is tuple:
        _seq(x, out, depth, np)
    elif t is dict:
        _dict(x, out, depth, np)
    elif np is not None and isinstance(x, np.ndarray):
        _encode(np.ndarray.tolist(x), out, depth + 1, np)
    elif np is not None and isinstance(x, np.generic):
        _encode(np.generic.item(x), out, depth + 1, np)
    elif isinstance(x, bool):
        out.append("true" if bool.__bool__(x) else "false")
    elif isinstance(x, int):
        out.append(int.__repr__(x))
    elif isinstance(x, float):
        _float(x, out)
    elif isinstance(x, str):
        out.append(_jstr(str.__str__(x)))
    elif isinstance(x, (list, tuple)):
        _seq(list.__iter__(x) if isinstance(x, list) else tuple.__iter__(x), out, depth, np)
    elif isinstance(x, (bytes, bytearray)):
        out.append('{"$bytes":"%s"}' % bytes(x).hex())
    elif isinstance(x, (set, frozenset)):
        out.append('{"$set":')
        _seq(list(x), out, depth, np)
        out.append("}")
    elif isinstance(x, dict):
        _dict(x, out, depth, np)
    else:
        out.append('{"$repr":%s}' % _jstr(_safe_repr(x)))


def _float(x: float, out: list) -> None:
    v = float(float.__repr__(x))
    if v != v:
        out.append('{"$float":"nan"}')
    elif v in (float("inf"), float("-inf")):
        out.append('{"$float":"%s"}' % ("inf" if v > 0 else "-inf"))
    else:
        out.append(float.__repr__(v))


def _seq(items: Any, out: list, depth: int, np: Any) -> None:
    out.append("[")
    first = True
    for item in items:
        if not first:
            out.append(",")
        first = False
        _encode(item, out, depth + 1, np)
    out.append("]")


def _dict(d: Any, out: list, depth: int, np: Any) -> None:
    items = list(dict.items(d))
    if all(type(k) is str and not k.startswith("$") for k, _ in items):
        out.append("{")
        for n, (k, v) in enumerate(items):
            if n:
                out.append(",")
            out.append(_jstr(k))
            out.append(":")
            _encode(v, out, depth + 1, np)
        out.append("}")
    else:
        out.append('{"$dict":')
        _seq([[k, v] for k, v in items], out, depth, np)
        out.append("}")


def _safe_repr(x: object) -> str:
    name = "?"
    try:
        name = type(x).__name__
        text = repr(x)
    except BaseException:
        text = "<unprintable>"
    if type(text) is not str:
        text = "<unprintable>"
    return "%s: %s" % (name, text[:200])


def _safe_str(e: BaseException) -> str:
    try:
        s = str(e)
        if type(s) is not str:
            raise TypeError
    except BaseException:
        s = "<unprintable message>"
    return s[:MAX_MSG]


def _trimmed_traceback(exc: BaseException, lines: list) -> str:
    """Only the submission's own frames, like traceback.format_exception but without importing it."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == SUBMISSION_FILE:
            frames.append((tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    out = []
    prev = None
    repeat = 0
    for lineno, name in frames:
        if (lineno, name) == prev:
            repeat += 1
            continue
        if repeat:
            out.append("  [previous line repeated %d more times]" % repeat)
            repeat = 0
        prev = (lineno, name)
        out.append('  File "%s", line %d, in %s' % (SUBMISSION_FILE, lineno, name))
        if 0 < lineno <= len(lines):
            out.append("    " + lines[lineno - 1].strip()[:200])
    if repeat:
        out.append("  [previous line repeated %d more times]" % repeat)
    if len(out) > 40:
        out = [*out[:20], "  ...", *out[-20:]]
    return "\n".join(out)


def _error(exc: BaseException, lines: list) -> str:
    name = type(exc).__name__
    if isinstance(exc, MemoryError):
        kind = "memory"
    elif (isinstance(exc, BlockingIOError) and exc.errno == errno.EAGAIN) or (
            isinstance(exc, RuntimeError) and "can't start new thread" in str(exc)):
        kind = "processes"  # fork/clone refused: RLIMIT_NPROC reached
    elif isinstance(exc, SystemExit):
        kind = "exit"
    elif isinstance(exc, RecursionError):
        kind = "recursion"
    else:
        kind = "exception"
    return '{"type":%s,"kind":"%s","msg":%s,"tb":%s}' % (
        _jstr(name[:100]),
        kind,
        _jstr(_safe_str(exc)),
        _jstr(_trimmed_traceback(exc, lines)),
    )


def _apply_limits(cfg: dict) -> None:
    import resource

    for name, value in cfg["rlimits"].items():
        res = getattr(resource, name, None)
        if res is None:
            continue
        soft, hard = value if isinstance(value, (list, tuple)) else (value, value)
        try:
            resource.setrlimit(res, (soft, hard))
        except (ValueError, OSError):
            if name != "RLIMIT_NPROC":
                raise


def _install_seccomp(prog: bytes) -> None:
    """Install the judge's compiled BPF filter (built by the parent) under no_new_privs."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(prog, len(prog))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP failed")


def _isolate(iso: dict) -> None:
    """rlimit tier as root: new mount, IPC and network namespaces; hide private paths; private temp dirs.

    Hidden paths get an empty, read-only, mode-000 tmpfs on top; the interpreter and its packages are
    reached through descriptors opened before (``/proc/self/fd/N``), so hiding their folders is safe."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    if libc.unshare(0x00020000 | 0x08000000 | 0x40000000) != 0:  # CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "unshare failed")

    def mount(target: str, fstype: Any, flags: int, data: Any) -> None:
        src = b"none" if fstype else None
        if libc.mount(src, target.encode(), fstype, flags, data) != 0:
            raise OSError(ctypes.get_errno(), "mount %s failed" % target)

    mount("/", None, 0x4000 | 0x40000, None)  # MS_REC | MS_PRIVATE: nothing propagates back to the host
    # The parent's O_PATH descriptors (interpreter, site-packages) belong to ITS mount namespace, where
    # nothing is hidden: `/proc/self/fd/N/../..` would climb to the judge's root and read the bank.
    # Reopen each, under the same number, in this namespace before hiding: `..` then meets the mounts.
    for fd, path in iso.get("reopen", ()):
        new = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        os.dup2(new, fd)
        os.close(new)
    for path in iso["hide"]:
        mount(path, b"tmpfs", 1 | 2 | 4 | 8, b"size=4k,nr_inodes=2,mode=000")  # RDONLY NOSUID NODEV NOEXEC
    for path, size in iso["tmpfs"]:
        mount(path, b"tmpfs", 2 | 4, b"size=%d,mode=1777" % size)  # NOSUID | NODEV
    os.chdir(iso["chdir"])


def _next_input(fd: int) -> Any:
    """The next test's (args, kwargs), or None when the parent has no more."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    blob = _read_exact(fd, int.from_bytes(head, "big"))
    return None if blob is None else marshal.loads(blob)


def _read_exact(fd: int, n: int) -> Any:
    parts = []
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def main(cfg: dict) -> None:
    global _out_fd, _harness_pid, _reserve
    _out_fd = cfg["result_fd"]
    _harness_pid = os.getpid()
    in_fd = cfg["input_fd"]
    os.umask(0o077)
    if cfg.get("isolate") is not None:
        _isolate(cfg["isolate"])
    _apply_limits(cfg)
    drop = cfg.get("drop_to")
    if drop is not None:
        os.setgroups([])
        os.setgid(drop[1])
        os.setuid(drop[0])
    if cfg.get("seccomp"):
        _install_seccomp(cfg["seccomp"])
    for p in cfg.get("sys_path", ()):
        if p not in sys.path:
            sys.path.append(p)
    # Close every inherited fd except stdio and the two pipes: nothing else of the judge leaks in.
    keep = set(cfg.get("keep_fds", ()))
    keep.add(_out_fd)
    keep.add(in_fd)
    try:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd > 2 and fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
    except OSError:
        pass

    source = cfg["code"]
    n_tests = cfg["n_tests"]
    entry_name = cfg["entry"]
    cfg.clear()  # nothing of the judge's configuration stays reachable from the submission
    lines = source.splitlines()
    _reserve = bytearray(1 << 20)
    _emit('{"ready":true}')

    try:
        code = compile(source, SUBMISSION_FILE, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        lineno = getattr(e, "lineno", None) or 0
        text = getattr(e, "text", None) or ""
        msg = getattr(e, "msg", None) or _safe_str(e)
        _emit(
            '{"syntax":{"type":%s,"msg":%s,"line":%d,"text":%s}}'
            % (_jstr(type(e).__name__), _jstr(str(msg)[:MAX_MSG]), int(lineno), _jstr(str(text)[:200]))
        )
        return
    # exit/quit come from `site`, which the judge does not run (-S): give them back as sys.exit
    ns: dict = {"__name__": "submission", "__file__": SUBMISSION_FILE, "__builtins__": __builtins__,
                "exit": sys.exit, "quit": sys.exit}
    try:
        exec(code, ns)
        entry = ns.get(entry_name)
        if not callable(entry):
            raise NameError("the submission does not define a function named %r" % entry_name)
    except BaseException as e:
        _reserve = None
        _flush()
        _emit('{"load_err":%s}' % _error(e, lines))
        return
    _flush()
    _emit('{"loaded":true}')

    for i in range(n_tests):
        call = _next_input(in_fd)
        if call is None:
            return
        t0 = time.perf_counter()
        try:
            value = entry(*call[0], **call[1])
            call = None
            ms = (time.perf_counter() - t0) * 1000.0
            out: list = []
            _encode(value, out, 0, sys.modules.get("numpy"))
            value = None
            line = '{"i":%d,"ms":%.3f,"ok":true,"v":%s}' % (i, ms, "".join(out))
            out = []
        except BaseException as e:
            call = value = None
            ms = (time.perf_counter() - t0) * 1000.0
            if _reserve is None or isinstance(e, MemoryError):
                _reserve = None
            line = '{"i":%d,"ms":%.3f,"ok":false,"err":%s}' % (i, ms, _error(e, lines))
            if _reserve is None:
                try:
                    _reserve = bytearray(1 << 20)
                except MemoryError:
                    pass
        _flush()
        _emit(line)
    _emit('{"done":true}')


def run(cfg: dict) -> None:
    """Entry point called by the stub; never returns (skips the submission's atexit hooks)."""
    main(cfg)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(0)


# What `python -I -c STUB FD` runs: the judge's code object and config arrive together on the memfd.
STUB = (
    "import marshal,os,sys\n"
    "with os.fdopen(int(sys.argv[1]),'rb') as f: c,cfg=marshal.load(f)\n"
    "g={'__name__':'onsite_harness','__builtins__':__builtins__}\n"
    "exec(c,g)\n"
    "g['run'](cfg)\n"
)
