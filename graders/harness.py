"""Runs INSIDE the sandbox: apply limits, load the submission, call the entry once per input.

``graders.sandbox`` compiles this file once, and each sandbox runs ``python -I -c STUB CONFIG_FD``
where the stub reads ``(code object, config)`` with marshal from the inherited memfd and calls
``run(config)``, so no sandbox pays for compiling it. It imports nothing from ``graders``. It is trusted code that runs
before any submission code, so it applies the resource limits, drops privileges and (in the rlimit
tier) installs a seccomp filter that denies new sockets before it reads the submission.

Results go out as one JSON object per line on a dedicated pipe (its fd number is in the config), never
on stdout. The submission runs in the same process and *can* write to that pipe too; that is fine,
because the expected outputs never enter the sandbox and the verdict is computed by the parent from
decoded plain data. A forged line can at most claim a value the submission could have returned.

Start-up cost matters (the judge's goal is within 1.5x of ``python -I -c pass``), so this module
imports only builtin or tiny modules: no json, no traceback, no numpy unless the submission did.
"""

# ruff: noqa: UP031  (%-formatting on purpose: this runs in every sandbox and must start fast)
from __future__ import annotations

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
_reserve: bytearray | None = None


def _emit(line: str) -> None:
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


def _deny_sockets() -> None:
    """seccomp: socket() and io_uring_setup() fail with EACCES; foreign syscall ABIs are refused."""
    import ctypes
    import platform
    import struct

    machine = platform.machine()
    if machine == "x86_64":
        arch, socket_nr = 0xC000003E, 41
    elif machine == "aarch64":
        arch, socket_nr = 0xC00000B7, 198
    else:
        raise OSError("no seccomp socket filter for architecture %s" % machine)
    io_uring_setup = 425
    ld_w_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 13  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EACCES
    kill = 0x80000000  # SECCOMP_RET_KILL_PROCESS
    prog = [
        (ld_w_abs, 0, 0, 4),  # 0: A = arch
        (jeq, 1, 0, arch),  # 1: native ABI -> 3
        (ret, 0, 0, kill),  # 2
        (ld_w_abs, 0, 0, 0),  # 3: A = nr
        (jge, 3, 0, 0x40000000),  # 4: x32 ABI -> deny (8)
        (jeq, 2, 0, socket_nr),  # 5: -> deny (8)
        (jeq, 1, 0, io_uring_setup),  # 6: -> deny (8)
        (ret, 0, 0, allow),  # 7
        (ret, 0, 0, deny),  # 8
    ]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP failed")


def main(cfg: dict) -> None:
    global _out_fd, _reserve
    _out_fd = cfg["result_fd"]
    os.umask(0o077)
    _apply_limits(cfg)
    drop = cfg.get("drop_to")
    if drop is not None:
        os.setgroups([])
        os.setgid(drop[1])
        os.setuid(drop[0])
    if cfg.get("deny_sockets"):
        _deny_sockets()
    for p in cfg.get("sys_path", ()):
        if p not in sys.path:
            sys.path.append(p)
    # Close every inherited fd except stdio and the result pipe: nothing else of the judge leaks in.
    keep = set(cfg.get("keep_fds", ()))
    keep.add(_out_fd)
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
    tests = cfg["tests"]
    entry_name = cfg["entry"]
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
    ns: dict = {"__name__": "submission", "__file__": SUBMISSION_FILE, "__builtins__": __builtins__}
    try:
        exec(code, ns)
        entry = ns.get(entry_name)
        if not callable(entry):
            raise NameError("the submission does not define a function named %r" % entry_name)
    except BaseException as e:
        _reserve = None
        _emit('{"load_err":%s}' % _error(e, lines))
        return
    _emit('{"loaded":true}')

    for i, (args_blob, kwargs_blob) in enumerate(tests):
        args = marshal.loads(args_blob)
        kwargs = marshal.loads(kwargs_blob)
        t0 = time.perf_counter()
        try:
            value = entry(*args, **kwargs)
            ms = (time.perf_counter() - t0) * 1000.0
            out: list = []
            _encode(value, out, 0, sys.modules.get("numpy"))
            line = '{"i":%d,"ms":%.3f,"ok":true,"v":%s}' % (i, ms, "".join(out))
        except BaseException as e:
            ms = (time.perf_counter() - t0) * 1000.0
            if _reserve is None or isinstance(e, MemoryError):
                _reserve = None
            line = '{"i":%d,"ms":%.3f,"ok":false,"err":%s}' % (i, ms, _error(e, lines))
            if _reserve is None:
                try:
                    _reserve = bytearray(1 << 20)
                except MemoryError:
                    pass
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
