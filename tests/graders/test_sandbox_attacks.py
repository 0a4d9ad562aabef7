"""Hostile submissions against real sandboxes, in both tiers: each asserts the verdict AND that the
bad effect did not happen (no process left, nothing written, nothing leaked, the judge alive)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graders import sandbox
from graders.result import GradeResult
from tests.graders.conftest import make_spec

Grade = Callable[..., GradeResult]
FILTER = sandbox.seccomp_status()[0]
ONE_PROCESS = f"processes 1, threads {sandbox.NPROC}"  # the limit named when the filter refused a fork


@pytest.fixture
def no_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback of a machine without seccomp: runs may fork, so what forks do must be cleaned up too."""
    monkeypatch.setattr(sandbox, "seccomp_status", lambda: (False, "forced off by the test"))


def test_accepts_plain_solution(grade: Grade, tier: str) -> None:
    r = grade("def f():\n    return 1\n")
    assert r.verdict == "accepted", r.message
    assert (r.passed, r.total) == (1, 1)


def test_infinite_loop(grade: Grade, tier: str) -> None:
    t = time.monotonic()
    r = grade("def f():\n    while True:\n        pass\n")
    assert r.verdict == "time_limit"
    assert r.limit and "1 s" in r.limit
    assert time.monotonic() - t < 4


def test_infinite_loop_at_import(grade: Grade, tier: str) -> None:
    r = grade("while True:\n    pass\n")
    assert r.verdict == "time_limit"


def test_long_sleep(grade: Grade, tier: str) -> None:
    t = time.monotonic()
    r = grade("import time\ndef f():\n    time.sleep(100)\n")
    assert r.verdict == "time_limit"
    assert time.monotonic() - t < 4


def test_cpu_burn_in_threads_hits_cpu_or_wall_limit(grade: Grade, tier: str) -> None:
    code = (
        "import threading\n"
        "def spin():\n    while True: pass\n"
        "def f():\n"
        "    for _ in range(4): threading.Thread(target=spin, daemon=True).start()\n"
        "    spin()\n"
    )
    r = grade(code)
    assert r.verdict == "time_limit"


def test_memory_bomb(grade: Grade, tier: str) -> None:
    r = grade("def f():\n    x = []\n    while True:\n        x.append(bytearray(10**7))\n", time_limit_s=5)
    assert r.verdict == "memory_limit", r.message
    assert r.limit == "memory 256 MB"
    assert "MemoryError" in r.message


def test_numpy_allocation_bomb(grade: Grade, tier: str) -> None:
    r = grade("import numpy as np\ndef f():\n    return np.ones((10**5, 10**5)).sum()\n", time_limit_s=5)
    assert r.verdict == "memory_limit", r.message


def test_numpy_import_and_matmul_fit_in_the_memory_limit(grade: Grade, tier: str) -> None:
    code = (
        "import numpy as np\n"
        "def f():\n"
        "    a = np.random.default_rng(0).random((300, 300))\n"
        "    return int((a @ a.T).shape[0] // 300)\n"
    )
    r = grade(code, memory_mb=128, time_limit_s=5)
    assert r.verdict == "accepted", r.message + r.stderr


@pytest.mark.skipif(not FILTER, reason="no seccomp filter on this machine")
def test_fork_bomb(grade: Grade, tier: str) -> None:
    """With the filter a run is one process: the first fork is refused, named as the process limit."""
    t = time.monotonic()
    r = grade("import os\ndef f():\n    while True:\n        os.fork()\n")
    assert r.verdict == "runtime_error", r.message
    assert r.limit == ONE_PROCESS, r.message  # named as the limit it is, not as tampering
    assert r.message.startswith("On test 'one': BlockingIOError: [Errno 11] Resource temporarily unavailable "
                                "(the process limit: a run is one process, which cannot start others, with at most "
                                f"{sandbox.NPROC} threads)")
    assert "result channel" not in r.message
    assert time.monotonic() - t < 6


def test_fork_bomb_without_the_filter(grade: Grade, tier: str, no_filter: None) -> None:
    t = time.monotonic()
    r = grade("import os\ndef f():\n    while True:\n        os.fork()\n")
    assert r.verdict == "runtime_error", r.message
    assert r.limit == f"processes {sandbox.NPROC}", r.message  # named as the limit it is, not as tampering
    assert r.message.startswith("On test 'one': BlockingIOError: [Errno 11] Resource temporarily unavailable "
                                f"(the process limit: at most {sandbox.NPROC} processes and threads per run)")
    assert "result channel" not in r.message
    assert time.monotonic() - t < 6


def test_a_forked_child_that_returns_does_not_report_for_the_parent(grade: Grade, tier: str, no_filter: None) -> None:
    """A child of os.fork() that returns from the entry comes back into the harness: it must exit there
    silently, not report a second result (the verdict was "wrote to the judge's result channel").
    Only without the filter: with it, the fork is refused."""
    code = ("import os\n"
            "def f(x):\n"
            "    pid = os.fork()\n"
            "    if pid:\n"
            "        os.waitpid(pid, 0)\n"
            "        return x\n"
            "    return -1\n")
    r = grade(code, tests=[{"args": [n], "expected": n, "visible": n == 0} for n in range(3)])
    assert r.verdict == "accepted", r.message
    assert (r.passed, r.total) == (3, 3)


def test_threads_past_the_limit_are_named_as_the_process_limit(grade: Grade, tier: str) -> None:
    code = ("import threading, time\n"
            "def f():\n"
            "    for _ in range(100):\n"
            "        threading.Thread(target=time.sleep, args=(3,), daemon=True).start()\n")
    r = grade(code, tests=[{"args": [], "expected": None, "visible": False}])
    assert r.verdict == "runtime_error" and r.limit == (ONE_PROCESS if FILTER else f"processes {sandbox.NPROC}")
    assert r.message == ("On a hidden test (test 1 of 1): RuntimeError (details of hidden tests are not shown)"
                         + (" (the process limit: a run is one process, which cannot start others, with at most "
                            f"{sandbox.NPROC} threads)" if FILTER else
                            f" (the process limit: at most {sandbox.NPROC} processes and threads per run)")), r.message


def test_subprocess_storm(grade: Grade, tier: str) -> None:
    code = (
        "import subprocess\n"
        "def f():\n"
        "    ps = [subprocess.Popen(['sleep', '100']) for _ in range(200)]\n"
        "    return len(ps)\n"
    )
    r = grade(code)
    assert r.verdict == "runtime_error", r.message
    assert "BlockingIOError" in r.message or "Resource temporarily unavailable" in r.message


def test_setsid_orphan_is_killed(grade: Grade, tier: str, no_filter: None) -> None:
    """Without the filter (with it the fork is refused): a double-forked setsid child is killed."""
    code = (
        "import os, time\n"
        "def f():\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "        os._exit(0)\n"
        "    time.sleep(0.2)\n"
        "    return 1\n"
    )
    r = grade(code)  # grade() asserts no process of the slot uid is alive afterwards
    assert r.verdict == "accepted", (r.message, r.stderr)


def test_huge_output(grade: Grade, tier: str) -> None:
    r = grade("def f():\n    while True:\n        print('x' * 1000)\n")
    assert r.verdict == "output_limit"
    assert len(r.stdout) < sandbox.OUTPUT_KEEP + 200
    assert "truncated" in r.stdout


def test_one_giant_line(grade: Grade, tier: str) -> None:
    r = grade("import sys\ndef f():\n    sys.stdout.write('y' * 50_000_000)\n    return 1\n")
    assert r.verdict == "output_limit"
    assert len(r.stdout) < sandbox.OUTPUT_KEEP + 200


def test_invalid_utf8_and_null_bytes_in_output(grade: Grade, tier: str) -> None:
    code = (
        "import sys\n"
        "def f():\n"
        "    sys.stdout.buffer.write(b'ok \\xff\\xfe \\x00 end\\n')\n"
        "    sys.stdout.flush()\n"
        "    sys.stderr.buffer.write(b'\\xc3(')\n"
        "    return 1\n"
    )
    r = grade(code)
    assert r.verdict == "accepted"
    assert r.stdout.startswith("ok \ufffd\ufffd \\x00 end")
    assert "\ufffd" in r.stderr


def test_writes_outside_the_work_dir(grade: Grade, tier: str) -> None:
    marker = f"onsite-escape-{secrets.token_hex(4)}"
    repo_target = Path(__file__).resolve().parents[2] / marker
    targets = [f"/tmp/{marker}", f"/var/tmp/{marker}", f"/dev/shm/{marker}", str(repo_target), f"/{marker}"]
    code = (
        "def f():\n"
        "    ok = 0\n"
        f"    for p in {targets!r}:\n"
        "        try:\n"
        "            open(p, 'w').write('pwned')\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 1\n"
    )
    r = grade(code)
    assert r.verdict == "accepted"
    for p in targets:
        assert not os.path.exists(p), f"{p} was left on the host"


def test_filling_the_work_dir(grade: Grade, tier: str) -> None:
    code = (
        "def f():\n"
        "    chunk = b'z' * (1 << 20)\n"
        "    for i in range(10_000):\n"
        "        with open(f'fill{i}', 'wb') as fh:\n"
        "            for _ in range(8):\n"
        "                fh.write(chunk)\n"
        "    return 1\n"
    )
    r = grade(code)
    assert r.verdict in ("output_limit", "runtime_error"), r.message
    if r.verdict == "runtime_error":
        assert "No space left" in r.message or "too large" in r.message


def test_single_file_size_limit(grade: Grade, tier: str) -> None:
    code = "def f():\n    open('big', 'wb').write(b'a' * (20 << 20))\n    return 1\n"
    r = grade(code)
    assert r.verdict in ("runtime_error", "output_limit"), r.message


def test_environment_is_empty(grade: Grade, tier: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "tok-" + secrets.token_hex(8)
    monkeypatch.setenv("DISCORD_TOKEN", secret)
    code = (
        "import os\n"
        "def f():\n"
        "    out = dict(os.environ)\n"
        "    for pid in os.listdir('/proc'):\n"
        "        try:\n"
        "            out[pid] = open(f'/proc/{pid}/environ', 'rb').read().decode('latin-1')\n"
        "        except OSError:\n"
        "            pass\n"
        "    print(out)\n"
        "    return out\n"
    )
    r = grade(code)
    assert r.verdict == "wrong_answer"
    assert secret not in repr(r.to_dict())
    env_keys = {k for k in r.tests[0].got if not k.isdigit() and k not in ("self", "thread-self")}
    assert env_keys <= {*sandbox._sandbox_env("/x"), "PWD"}


def test_cannot_read_the_parents_files(grade: Grade, tier: str, tmp_path: Path) -> None:
    secret = "db-" + secrets.token_hex(8)
    db = tmp_path / "onsite.db"
    db.write_text(secret)
    db.chmod(0o600)
    env = tmp_path / ".env"
    env.write_text(f"SLACK_TOKEN={secret}")
    env.chmod(0o600)
    code = (
        "import os\n"
        "def f():\n"
        "    got = []\n"
        f"    for p in [{str(db)!r}, {str(env)!r}, '/proc/1/environ', '/proc/{os.getpid()}/environ', "
        "'/etc/shadow', '/root/.bash_history']:\n"
        "        try:\n"
        "            got.append(open(p).read())\n"
        "        except OSError as e:\n"
        "            got.append(type(e).__name__)\n"
        "    return got\n"
    )
    r = grade(code)
    assert secret not in repr(r.to_dict())
    assert r.verdict == "wrong_answer"
    got = r.tests[0].got
    assert got[0] in ("PermissionError", "FileNotFoundError")
    assert got[1] in ("PermissionError", "FileNotFoundError")


def test_runs_unprivileged(grade: Grade, tier: str) -> None:
    r = grade("import os\ndef f():\n    return [os.getuid(), os.geteuid(), os.getgid()]\n")
    got = r.tests[0].got
    if os.geteuid() == 0:
        assert 0 not in got


def test_no_network_to_localhost(grade: Grade, tier: str) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.3)
    port = srv.getsockname()[1]
    code = (
        "import socket\n"
        "def f():\n"
        "    try:\n"
        f"        s = socket.create_connection(('127.0.0.1', {port}), timeout=0.5)\n"
        "        s.sendall(b'pwned')\n"
        "        return 'connected'\n"
        "    except OSError as e:\n"
        "        return type(e).__name__\n"
    )
    r = grade(code)
    assert r.verdict == "wrong_answer"
    assert r.tests[0].got != "connected"
    with pytest.raises(TimeoutError):
        srv.accept()
    srv.close()


def test_ctypes_segfault(grade: Grade, tier: str) -> None:
    r = grade("import ctypes\ndef f():\n    return ctypes.string_at(0)\n")
    assert r.verdict == "crashed"
    assert "SIGSEGV" in r.message


def test_deep_recursion(grade: Grade, tier: str) -> None:
    r = grade("def f(n=0):\n    return f(n + 1)\n")
    assert r.verdict == "runtime_error"
    assert "RecursionError" in r.message
    assert "previous line repeated" in r.message
    assert 'File "submission.py", line 2, in f' in r.message


def test_unbounded_recursion_limit_crashes_cleanly(grade: Grade, tier: str) -> None:
    code = "import sys\nsys.setrecursionlimit(10**8)\ndef f(n=0):\n    return f(n + 1) + 1\n"
    r = grade(code)
    assert r.verdict in ("crashed", "memory_limit", "runtime_error", "time_limit"), r.message


def test_sys_exit_before_tests(grade: Grade, tier: str) -> None:
    r = grade("import sys\nsys.exit(0)\ndef f():\n    return 1\n")
    assert r.verdict == "runtime_error"
    assert "sys.exit" in r.message
    assert r.passed == 0


def test_os_exit_before_tests(grade: Grade, tier: str) -> None:
    r = grade("import os\nos._exit(0)\ndef f():\n    return 1\n")
    assert r.verdict == "runtime_error"
    assert "exited (code 0)" in r.message
    assert r.passed == 0


def test_printing_and_writing_a_fake_result(grade: Grade, tier: str) -> None:
    code = (
        "import os, sys\n"
        "print('{\"verdict\": \"accepted\", \"passed\": 1, \"total\": 1}')\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        os.write(fd, b'{\"i\":0,\"ms\":0,\"ok\":true,\"v\":1}\\n{\"done\":true}\\n')\n"
        "    except OSError:\n"
        "        pass\n"
        "def f():\n"
        "    return 2\n"
    )
    r = grade(code)
    assert r.verdict != "accepted"
    assert r.passed == 0


def test_rigged_eq_objects_do_not_pass(grade: Grade, tier: str) -> None:
    code = (
        "class Evil:\n"
        "    def __eq__(self, other): return True\n"
        "    def __ne__(self, other): return False\n"
        "class EvilInt(int):\n"
        "    def __eq__(self, other): return True\n"
        "def f(k):\n"
        "    return Evil() if k == 0 else EvilInt(7)\n"
    )
    tests = [
        {"name": "obj", "args": [0], "expected": 1, "visible": True},
        {"name": "int", "args": [1], "expected": 1, "visible": True},
    ]
    r = grade(code, tests=tests)
    assert r.verdict == "wrong_answer"
    assert r.passed == 0
    assert "Evil" in r.message


def test_monkeypatched_numpy_does_not_pass(grade: Grade, tier: str) -> None:
    code = (
        "import numpy as np\n"
        "np.allclose = lambda *a, **k: True\n"
        "np.array_equal = lambda *a, **k: True\n"
        "def f():\n"
        "    return np.array([9.0, 9.0])\n"
    )
    r = grade(code, tests=[{"args": [], "expected": [1.0, 2.0]}], compare="float")
    assert r.verdict == "wrong_answer"


def test_nan_and_inf_round_trip(grade: Grade, tier: str) -> None:
    code = (
        "import numpy as np\n"
        "def f(k):\n"
        "    return [float('nan'), float('inf'), -np.inf, np.float32(1.5), np.array([np.nan])][k]\n"
    )
    tests = [
        {"name": "nan", "args": [0], "expected": float("nan"), "visible": True},
        {"name": "inf", "args": [1], "expected": float("inf"), "visible": True},
        {"name": "-inf", "args": [2], "expected": float("-inf")},
        {"name": "np scalar", "args": [3], "expected": 1.5},
        {"name": "np array", "args": [4], "expected": [float("nan")]},
    ]
    r = grade(code, tests=tests, compare="float")
    assert r.verdict == "accepted", r.message
    r = grade("def f(k):\n    return 0.0\n", tests=tests, compare="float")
    assert r.verdict == "wrong_answer"
    assert r.passed == 0


def test_null_bytes_in_source(grade: Grade, tier: str) -> None:
    r = grade("def f():\n    return 1\x00\n")
    assert r.verdict == "syntax_error"


def test_syntax_error_reports_line(grade: Grade, tier: str) -> None:
    r = grade("def f(:\n    return 1\n")
    assert r.verdict == "syntax_error"
    assert "line 1" in r.message


def test_empty_submission(grade: Grade, tier: str) -> None:
    r = grade("")
    assert r.verdict == "runtime_error"
    assert "does not define a function named 'f'" in r.message


def test_one_megabyte_submission(grade: Grade, tier: str) -> None:
    code = "# " + "a" * 1_000_000 + "\nBIG = '" + "b" * 100_000 + "'\ndef f():\n    return 1\n"
    r = grade(code)
    assert r.verdict == "accepted", r.message


def test_killing_the_parent(grade: Grade, tier: str) -> None:
    code = (
        "import os, signal\n"
        "def f():\n"
        "    for pid in (os.getppid(), 1, -1):\n"
        "        try:\n"
        "            os.kill(pid, signal.SIGKILL)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 1\n"
    )
    r = grade(code)
    assert r.verdict in ("crashed", "runtime_error", "accepted"), r.message


def test_marker_invisible_to_next_run(grade: Grade, tier: str) -> None:
    name = f"onsite-marker-{secrets.token_hex(4)}"
    places = [name, f"/tmp/{name}", f"/var/tmp/{name}", f"/dev/shm/{name}"]
    write = (
        "import os\n"
        "def f():\n"
        f"    for p in {places!r} + [os.path.expanduser('~/{name}')]:\n"
        "        try:\n"
        "            open(p, 'w').write('x')\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 1\n"
    )
    assert grade(write).verdict == "accepted"
    read = (
        "import os\n"
        "def f():\n"
        f"    return [p for p in {places!r} + [os.path.expanduser('~/{name}')] if os.path.exists(p)]\n"
    )
    r = grade(read, tests=[{"args": [], "expected": [], "visible": True}])
    assert r.verdict == "accepted", r.tests[0].got


def test_two_concurrent_runs_keep_their_own_limits(tier: str, spec_of: Any) -> None:
    hog = "def f():\n    x = bytearray(150 * 1024 * 1024)\n    return 1\n"
    loop = "def f():\n    while True:\n        pass\n"
    fast = "def f():\n    return 1\n"
    results: dict[str, GradeResult] = {}

    def go(key: str, code: str, **kw: object) -> None:
        results[key] = sandbox.run(code, spec_of(**kw), tier=tier)

    threads = [
        threading.Thread(target=go, args=("small", hog), kwargs={"memory_mb": 64}),
        threading.Thread(target=go, args=("big", hog), kwargs={"memory_mb": 512}),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["small"].verdict == "memory_limit"
    assert results["big"].verdict == "accepted", results["big"].message

    t0 = time.monotonic()
    threads = [
        threading.Thread(target=go, args=("loop", loop)),
        threading.Thread(target=go, args=("fast", fast)),
    ]
    for t in threads:
        t.start()
    threads[1].join()
    fast_s = time.monotonic() - t0
    threads[0].join()
    assert results["fast"].verdict == "accepted"
    assert results["loop"].verdict == "time_limit"
    assert fast_s < 1.0


# ---------------------------------------------------------------------------------------------------
# Judge integrity (issue 15): hostile code must not fake, read or take down the judge.

ISOLATED = sandbox.isolation_status()[0]
SYS_EXIT = {"x86_64": 60, "aarch64": 93}.get(os.uname().machine, 60)


def _json(r: GradeResult) -> str:
    return json.dumps(r.to_dict())


def test_no_later_test_input_is_in_memory_while_a_test_runs(grade: Grade, tier: str) -> None:
    """The harness holds only the current test's input: a frame and gc walk finds no later one, and
    no later input is waiting in any inherited descriptor (the parent sends the next only after this
    result: inputs sent ahead would sit in the input pipe, readable by the submission)."""
    marks = [f"M{n}x{secrets.token_hex(6)}" for n in range(5)]
    code = (
        "import gc, os, re, select, sys\n"
        "PATTERN = re.compile(r'M[0-9]x[0-9a-f]{12}')\n"
        "def look(x, cur, seen, depth=0):\n"
        "    if isinstance(x, (bytes, bytearray)):\n"
        "        x = bytes(x).decode('latin-1')\n"
        "    if isinstance(x, str):\n"
        "        seen.update(m for m in PATTERN.findall(x) if m != cur)\n"
        "    elif depth < 4 and isinstance(x, (list, tuple, set, frozenset)):\n"
        "        for v in list(x): look(v, cur, seen, depth + 1)\n"
        "    elif depth < 4 and isinstance(x, dict):\n"
        "        for k, v in list(x.items()): look(k, cur, seen, depth + 1); look(v, cur, seen, depth + 1)\n"
        "def f(mark):\n"
        "    seen = set()\n"
        "    for o in gc.get_objects():\n"
        "        look(o, mark, seen)\n"
        "    fr = sys._getframe()\n"
        "    while fr is not None:\n"
        "        look(dict(fr.f_locals), mark, seen)\n"
        "        look(dict(fr.f_globals), mark, seen)\n"
        "        fr = fr.f_back\n"
        "    for fd in range(3, 64):\n"
        "        try:\n"
        "            if select.select([fd], [], [], 0)[0]: look(os.read(fd, 1 << 20), mark, seen)\n"
        "        except (OSError, ValueError):\n"
        "            pass\n"
        "    earlier = {m for m in seen if int(m[1]) < int(mark[1])}\n"
        "    return sorted(seen - earlier)\n"  # earlier inputs the submission saw are fair game
    )
    tests = [{"name": f"t{n}", "args": [m], "expected": [], "visible": True} for n, m in enumerate(marks)]
    r = grade(code, tests=tests, time_limit_s=5)
    assert r.verdict == "accepted", [t.got for t in r.tests]


def test_hidden_inputs_never_reach_the_member(grade: Grade, tier: str) -> None:
    """Printed, raised, put in an exception's class name, forged on the result pipe or in an exit code:
    nothing of a hidden test's input comes back. The visible test's output still does."""
    hidden = [f"S{n}x{secrets.token_hex(6)}" for n in range(4)]
    code = (
        "import os, sys\n"
        "SEEN = []\n"
        "def f(s):\n"
        "    SEEN.append(s)\n"
        "    dump = '|'.join(SEEN)\n"
        "    print('stdout', dump)\n"
        "    print('stderr', dump, file=sys.stderr)\n"
        "    if s.startswith('S1'):\n"
        "        raise type('Leak_' + s, (Exception,), {})(dump)\n"
        "    if s.startswith('S2'):\n"
        "        return object.__new__(type('Leak_' + s, (), {'__repr__': lambda self: dump}))\n"
        "    if s.startswith('S3'):\n"
        "        line = '{\"i\":4,\"ms\":%d,\"ok\":false,\"err\":{\"type\":\"%s\",\"kind\":\"exception\",'\\\n"
        "               '\"msg\":\"%s\",\"tb\":\"\"}}\\n' % (int(s[4:10], 16), s, dump)\n"
        "        for fd in range(3, 40):\n"
        "            try: os.write(fd, line.encode())\n"
        "            except OSError: pass\n"
        "        os._exit(int(s[4:6], 16) or 1)\n"
        "    if s.startswith('S'):\n"
        "        raise ValueError(dump)\n"
        "    return 'x'\n"
    )
    tests = [
        {"name": "h0", "args": [hidden[0]], "expected": "x", "visible": False},
        {"name": "v", "args": ["visible-input"], "expected": "x", "visible": True},
        {"name": "h1", "args": [hidden[1]], "expected": "x", "visible": False},
        {"name": "h2", "args": [hidden[2]], "expected": "x", "visible": False},
        {"name": "h3", "args": [hidden[3]], "expected": "x", "visible": False},
    ]
    r = grade(code, tests=tests, time_limit_s=5)
    text = _json(r)
    for s in hidden:
        assert s not in text and s[4:] not in text, (s, text)
    byte = int(hidden[3][4:6], 16) or 1  # what an exit status could carry of the last hidden input
    assert f"code {byte}" not in r.message and "(code" not in r.message
    assert "stdout visible-input" in r.stdout and "stderr visible-input" in r.stderr
    assert "not shown" in r.stdout
    assert r.tests[1].verdict == "accepted"
    assert "ValueError" in r.tests[0].message and "Leak" not in r.tests[2].message
    assert r.tests[4].time_ms != float(int(hidden[3][4:10], 16))


def test_the_bank_and_the_bots_files_are_unreadable(grade: Grade, tier: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A submission that knows where the checkout, the bot's home and its database folder are, follows
    the editable install's finder, and climbs with `..` from every descriptor and sys.path entry it
    has (the rlimit tier reaches the interpreter through inherited descriptors), finds none of them
    (nor a question's expected value)."""
    if tier == "rlimit" and not ISOLATED:
        pytest.skip("the rlimit tier without root cannot hide files from its own uid; production refuses it")
    checkout = Path(sandbox.__file__).resolve().parents[1]
    mark = f"expected-{secrets.token_hex(8)}"
    planted = [checkout / f".onsite-probe-{secrets.token_hex(4)}.yaml"]
    private = Path("/srv") / f"onsite-probe-{secrets.token_hex(4)}"
    private.mkdir(parents=True)
    os.chmod(private, 0o755)
    planted.append(private / "onsite.db")
    sandbox.keep_private(private)
    home = Path("/srv") / f"onsite-home-{secrets.token_hex(4)}"  # a home others may read (0755, as often)
    home.mkdir()
    os.chmod(home, 0o755)
    planted.append(home / ".onsite.yaml")
    monkeypatch.setenv("HOME", str(home))
    question = next((checkout / "questions" / "coding").glob("*.yaml"))
    needle = question.read_text().splitlines()[0]  # "id: ..." of a real question file
    try:
        for p in planted:
            p.write_text(f"tests:\n- expected: {mark}\n")
            os.chmod(p, 0o644)
        code = (
            "import glob, os, re, sys\n"
            f"KNOWN = {[str(checkout), str(private), os.path.expanduser('~'), str(question)]!r}\n"
            f"MARKS = [{mark!r}.encode(), {needle!r}.encode()]\n"
            "def f():\n"
            "    roots = set(KNOWN)\n"
            "    for d in sys.path:\n"
            "        for p in glob.glob(os.path.join(d, '*.pth')) + glob.glob(os.path.join(d, '__editable__*')):\n"
            "            try: text = open(p).read()\n"
            "            except OSError: continue\n"
            "            roots.update(re.findall(r'[\\'\"](/[^\\'\"]+)[\\'\"]', text))\n"
            "            roots.update(line.strip() for line in text.splitlines() if line.startswith('/'))\n"
            "    fds = ['/proc/self/fd/' + n for n in os.listdir('/proc/self/fd')]\n"
            "    for d in [p for p in sys.path if p.startswith('/proc/')] + fds:\n"
            "        for k in range(1, 10):\n"
            "            up = d + '/..' * k\n"
            "            roots.add(up)\n"
            "            roots.update(up + r for r in KNOWN)\n"
            "    found = []\n"
            "    for root in sorted(roots):\n"
            "        paths = [root] + glob.glob(root + '/.*') + glob.glob(root + '/*')\n"
            "        paths += glob.glob(root + '/questions/*/*.yaml')\n"
            "        for p in paths:\n"
            "            try: data = open(p, 'rb').read(1 << 20)\n"
            "            except OSError: continue\n"
            "            if any(m in data for m in MARKS): found.append(p)\n"
            "    return found\n"
        )
        r = grade(code, tests=[{"args": [], "expected": [], "visible": True}], time_limit_s=10)
        assert r.verdict == "accepted", r.tests[0].got
    finally:
        for p in planted:
            p.unlink(missing_ok=True)
        private.rmdir()
        home.rmdir()
        sandbox._private_paths.discard(str(private))


def test_a_thread_group_leader_that_exits_alone_is_killed(grade: Grade, tier: str, no_filter: None) -> None:
    """setsid, start a spinning thread, SYS_exit the leader's own thread: state Z with a live thread.
    The run's clean-up kills it anyway (the grade fixture checks no process of the slot uid lives).
    Without the filter, where a run can fork; with it, see the next test."""
    code = (
        "import ctypes, os, threading, time\n"
        "def spin():\n"
        "    while True: pass\n"
        "def f():\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        threading.Thread(target=spin, daemon=True).start()\n"
        "        time.sleep(0.05)\n"
        f"        ctypes.CDLL(None).syscall({SYS_EXIT}, 0)\n"
        "    time.sleep(0.3)\n"
        "    return 1\n"
    )
    for _ in range(3):
        r = grade(code)
        assert r.verdict == "accepted", r.message
    t0 = time.monotonic()
    assert grade("def f():\n    return 1\n").verdict == "accepted"
    assert time.monotonic() - t0 < 5


def test_the_harness_leader_that_exits_alone_is_killed(grade: Grade, tier: str) -> None:
    """The same trick in the run's own process (all a run has with the filter): its leader thread
    exits, a spinning thread lives on. The run ends at its time limit and nothing of it survives."""
    code = (
        "import ctypes, threading\n"
        "def spin():\n"
        "    while True: pass\n"
        "def f():\n"
        "    threading.Thread(target=spin, daemon=True).start()\n"
        f"    ctypes.CDLL(None).syscall({SYS_EXIT}, 0)\n"
    )
    t0 = time.monotonic()
    for _ in range(2):
        r = grade(code)
        assert r.verdict == "time_limit", r.message
    assert time.monotonic() - t0 < 8
    assert grade("def f():\n    return 1\n").verdict == "accepted"


@pytest.mark.skipif(os.geteuid() != 0, reason="slots exist only when the judge is root")
def test_a_slot_that_cannot_be_cleared_is_quarantined_then_repaired(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slot whose uid keeps processes is skipped at once (no 0.5 s wait per acquisition) and used
    again once it is clear after the quarantine."""
    bad = sandbox.SLOT_UID_BASE + 7
    real_clear = sandbox._uid_clear
    calls: list[int] = []

    def clear(uid: int, wait_s: float = 0.5) -> bool:
        calls.append(uid)
        return uid != bad and real_clear(uid, wait_s)

    monkeypatch.setattr(sandbox, "_uid_clear", clear)
    sandbox._quarantine.clear()
    t0 = time.monotonic()
    handed = set()
    # each acquisition starts at a random slot: go on until the bad one has been tried, then
    # as many acquisitions again, which must all skip it without trying it a second time
    for _ in range(100 * sandbox.SLOT_COUNT):
        with sandbox._slot() as uid:
            handed.add(uid)
        if bad in calls:
            break
    for _ in range(3 * sandbox.SLOT_COUNT):
        with sandbox._slot() as uid:
            handed.add(uid)
    assert bad not in handed and len(handed) > sandbox.SLOT_COUNT // 2
    assert calls.count(bad) == 1  # tried once, then skipped without a wait
    assert time.monotonic() - t0 < 10
    checked: list[int] = []  # repaired means cleared and checked again, not just let out of quarantine

    def clear_and_note(uid: int, wait_s: float = 0.5) -> bool:
        checked.append(uid)
        return bool(real_clear(uid, wait_s))

    monkeypatch.setattr(sandbox, "_uid_clear", clear_and_note)
    sandbox._quarantine[7] = 0.0  # the quarantine ran out
    for _ in range(20 * sandbox.SLOT_COUNT):
        with sandbox._slot() as uid:
            if uid == bad:
                break
    assert uid == bad and 7 not in sandbox._quarantine and bad in checked


DEEP_TREES = (
    "import os\n"
    "def f():\n"
    "    for base in (os.getcwd(), '/tmp', '/var/tmp', '/dev/shm'):\n"
    "        try:\n"
    "            os.chdir(base)\n"
    "            os.mkdir('deep-' + str(os.getpid())); os.chdir('deep-' + str(os.getpid()))\n"
    "            for i in range(1500):\n"
    "                os.mkdir('d'); os.chdir('d')\n"
    "            open('f', 'w').write('x')\n"
    "            os.chmod('.', 0o500)\n"
    "        except OSError:\n"
    "            pass\n"
    "    return 1\n"
)


def _left_by(uid: int | None, before: frozenset[tuple[str, int]] = frozenset()) -> list[str]:
    """What `uid` owns in the shared temp dirs, apart from `before` (what was there before the run:
    an earlier judge, killed mid-run, may have left files under the same slot uid on this machine)."""
    out = []
    for d in sandbox.WORLD_WRITABLE:
        with contextlib.suppress(OSError):
            for e in os.scandir(d):
                st = e.stat(follow_symlinks=False)
                if uid is not None and st.st_uid == uid and (e.path, st.st_ino) not in before:
                    out.append(e.path)
    return out


def _shared_entries() -> frozenset[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for d in sandbox.WORLD_WRITABLE:
        with contextlib.suppress(OSError):
            found.update((e.path, e.stat(follow_symlinks=False).st_ino) for e in os.scandir(d))
    return frozenset(found)


def test_a_1500_deep_directory_tree_is_removed(grade: Grade, tier: str) -> None:
    before = _shared_entries()
    r = grade(DEEP_TREES, time_limit_s=5)
    assert r.verdict == "accepted", r.message
    assert _left_by(getattr(sandbox.last_run, "uid", None), before) == []


def test_without_namespaces_deep_trees_are_removed_from_the_host_too(
        grade: Grade, tier: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rlimit tier's fallback (no namespaces): work dir and shared temp dirs on the host."""
    if tier != "rlimit":
        pytest.skip("the fallback of the rlimit tier")
    monkeypatch.setattr(sandbox, "isolation_status", lambda: (False, "forced off by the test"))
    before = _shared_entries()
    r = grade(DEEP_TREES, time_limit_s=5)
    assert r.verdict == "accepted", r.message
    assert sandbox.last_run.isolated is False and sandbox.last_run.workdir
    assert _left_by(sandbox.last_run.uid, before) == []


def test_a_judge_failure_is_an_internal_error_not_an_exception(tier: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: Any, **_k: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(sandbox, "_verdict", broken)
    r = sandbox.run("def f():\n    return 1\n", make_spec(), tier=tier)
    assert r.verdict == "internal_error" and "RecursionError in the judge" in r.message
    monkeypatch.setattr(sandbox, "remove_tree", lambda _p: (_ for _ in ()).throw(sandbox.SandboxError("stuck")))
    monkeypatch.setattr(sandbox, "isolation_status", lambda: (False, "forced off by the test"))
    r = sandbox.run("def f():\n    return 1\n", make_spec(), tier="rlimit")
    assert r.verdict == "internal_error" and "stuck" in r.message


FORGE = (
    "import os\n"
    "def f():\n"
    "    line = {line}\n"
    "    for fd in range(3, 40):\n"
    "        try: os.write(fd, line)\n"
    "        except OSError: pass\n"
    "    os._exit(0)\n"
)


def _forged(grade: Grade, line: str) -> tuple[GradeResult, int]:
    """The verdict on a run that writes `line` on the result channel, and the judge's peak allocation."""
    tracemalloc.start()
    try:
        r = grade(FORGE.format(line=line), time_limit_s=10)
        return r, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("what, line", [
    ("900 levels deep", "b'{\"i\":0,\"ms\":1,\"ok\":true,\"v\":' + b'[' * 900 + b']' * 900 + b'}\\n'"),
    ("5 million empty dicts", "b'{\"i\":0,\"ms\":1,\"ok\":true,\"v\":[' + b'{},' * 5_000_000 + b'{}]}\\n'"),
    ("an int of 5000 digits", "b'{\"i\":0,\"ms\":1,\"ok\":true,\"v\":' + b'9' * 5000 + b'}\\n'"),
    # the shape of a test line, not only its size: each of these made the judge blame itself (internal_error)
    ("a time that is text", "b'{\"i\":0,\"ms\":\"x\",\"ok\":true,\"v\":1}\\n'"),
    ("a time past any float", "b'{\"i\":0,\"ms\":1' + b'0' * 400 + b',\"ok\":true,\"v\":1}\\n'"),
    ("a time that is a list", "b'{\"i\":0,\"ms\":[1],\"ok\":true,\"v\":1}\\n'"),
    ("a time that is NaN", "b'{\"i\":0,\"ms\":NaN,\"ok\":true,\"v\":1}\\n'"),
    ("an error that is a list", "b'{\"i\":0,\"ms\":1,\"ok\":false,\"err\":[1]}\\n'"),
    ("a test number that is true", "b'{\"i\":true,\"ms\":1,\"ok\":true,\"v\":1}\\n'"),
])
def test_forged_result_lines_are_refused_within_bounded_memory(grade: Grade, tier: str, what: str, line: str) -> None:
    r, peak = _forged(grade, line)
    assert r.verdict == "runtime_error" and "result channel" in r.message, (what, r.message)
    assert peak < 80 * 1024 * 1024, f"{what}: the judge held {peak / 2**20:.0f} MB"


def test_a_result_past_the_size_bound_stops_the_run(grade: Grade, tier: str) -> None:
    """One 40 MB string is one value (the count bound does not see it): the size bound stops the run
    before the judge holds it."""
    r, peak = _forged(grade, "b'{\"i\":0,\"ms\":1,\"ok\":true,\"v\":\"' + b'x' * (40 << 20) + b'\"}\\n'")
    assert r.verdict == "output_limit" and r.limit == f"results {sandbox.RESULT_MAX >> 20} MB", r.message
    assert peak < 80 * 1024 * 1024, f"the judge held {peak / 2**20:.0f} MB"


@pytest.mark.parametrize("returned, expected, mode", [
    ("10 ** 400", 1.5, "float"),
    ("10 ** 400", 1, "exact"),
    ("-(10 ** 400)", float("-inf"), "float"),
    ("{1: 'x'}", {True: "x"}, "exact"),
    ("{True: 'x'}", {1: "x"}, "exact"),
    ("{1, 2}", [True, 2], "unordered"),
])
def test_every_comparison_is_total_and_bool_is_not_int(grade: Grade, tier: str, returned: str, expected: Any,
                                                       mode: str) -> None:
    r = grade(f"def f():\n    return {returned}\n", compare=mode,
              tests=[{"args": [], "expected": expected, "visible": True}])
    assert r.verdict == "wrong_answer", r.message


def test_minus_zero_and_nan_still_match(grade: Grade, tier: str) -> None:
    r = grade("def f():\n    return [-0.0, float('nan'), 10 ** 30]\n", compare="float",
              tests=[{"args": [], "expected": [0.0, float("nan"), 10 ** 30], "visible": True}])
    assert r.verdict == "accepted", r.message


def _sysv_segments(uid: int | None) -> list[str]:
    try:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return []
    return [row for row in rows if uid is not None and int(row.split()[7]) == uid]


def test_memory_outside_the_limit_is_refused(grade: Grade, tier: str) -> None:
    """memfd + fallocate and SysV shared memory would hold 1 GB beside a 256 MB limit; /dev/shm files
    are capped by their tmpfs. Nothing of it outlives the run."""
    if tier == "rlimit" and not ISOLATED:
        pytest.skip("without namespaces /dev/shm is the host's (the filter still refuses memfd and SysV)")
    code = (
        "import ctypes, os\n"
        "def f():\n"
        "    held = {}\n"
        "    try:\n"
        "        fd = os.memfd_create('big'); os.posix_fallocate(fd, 0, 1 << 30); held['memfd'] = 1 << 30\n"
        "    except OSError as e: held['memfd'] = e.errno\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    libc.shmat.restype = ctypes.c_void_p\n"
        "    sid = libc.shmget(0, 1 << 30, 0o1600)\n"
        "    if sid >= 0:\n"
        "        addr = libc.shmat(sid, None, 0)\n"
        "        ctypes.memset(addr, 1, 1 << 28); held['sysv'] = 1 << 30\n"
        "    else: held['sysv'] = ctypes.get_errno()\n"
        "    total = 0\n"
        "    try:\n"
        "        for n in range(100):\n"
        "            with open('/dev/shm/f%d' % n, 'wb') as out: out.write(b'x' * (4 << 20))\n"
        "            total += 4 << 20\n"
        "    except OSError: pass\n"
        "    held['shm_files'] = total\n"
        "    return held\n"
    )
    r = grade(code, time_limit_s=10)
    got = r.tests[0].got
    assert isinstance(got, dict), r.message
    assert got["memfd"] == errno.EPERM and got["sysv"] == errno.EPERM, got
    assert got["shm_files"] <= sandbox.SHM_MAX, got
    assert _sysv_segments(getattr(sandbox.last_run, "uid", None)) == []


def _descendants_rss_mb() -> float:
    """Resident memory of every descendant of this process that runs as a slot uid (the run under test:
    its harness and whatever it forked, not other judges' runs on the machine), in MB."""
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[int, int]] = {}  # pid -> (uid, rss kB)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except OSError:
            continue
        pid, ppid = int(name), int(fields["PPid"])
        children.setdefault(ppid, []).append(pid)
        info[pid] = (int(fields["Uid"].split()[0]), int(fields.get("VmRSS", "0 kB").split()[0]))
    total, stack = 0, list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        uid, rss = info.get(pid, (-1, 0))
        if sandbox.SLOT_UID_BASE <= uid < sandbox.SLOT_UID_BASE + sandbox.SLOT_COUNT:
            total += rss
        stack += children.get(pid, [])
    return total / 1024


@pytest.mark.skipif(os.geteuid() != 0, reason="the run's processes are told apart by their slot uid")
@pytest.mark.skipif(not FILTER, reason="without the filter each forked process has its own memory limit")
def test_forked_processes_cannot_multiply_the_memory_limit(grade: Grade, tier: str) -> None:
    """Ten forked children of 200 MB each held 1-2 GB beside a 256 MB limit (each process had its own
    RLIMIT_DATA). A run is one process now: the first fork is refused, and threads share one limit."""
    forks = (
        "import os, time\n"
        "def f():\n"
        "    for n in range(10):\n"
        "        if os.fork() == 0:\n"
        "            b = bytearray(200 * 1024 * 1024)\n"
        "            for i in range(0, len(b), 4096): b[i] = 1\n"
        "            time.sleep(3)\n"
        "            os._exit(0)\n"
        "    time.sleep(2.5)\n"
        "    return 1\n"
    )
    threads = (
        "import threading, time\n"
        "held = []\n"
        "ready = threading.Barrier(10)\n"  # every thread (and its stack) exists before any allocates
        "def grab():\n"
        "    ready.wait()\n"
        "    b = bytearray(100 * 1024 * 1024)\n"
        "    held.append(b)\n"
        "def f():\n"
        "    ts = [threading.Thread(target=grab) for _ in range(10)]\n"
        "    for t in ts: t.start()\n"
        "    for t in ts: t.join()\n"
        "    time.sleep(1)\n"
        "    return len(held)\n"
    )
    bound = 256 + sandbox.AS_HEADROOM_MB  # RLIMIT_AS of the one process
    for code, verdict in ((forks, "runtime_error"), (threads, "wrong_answer")):
        peak, done = [0.0], threading.Event()

        def watch(peak: list[float], done: threading.Event) -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _descendants_rss_mb())
                time.sleep(0.02)

        watcher = threading.Thread(target=watch, args=(peak, done))
        watcher.start()
        try:
            r = grade(code, time_limit_s=6, memory_mb=256, tests=[{"args": [], "expected": 10, "visible": True}])
        finally:
            done.set()
            watcher.join()
        assert peak[0] < bound, f"the run held {peak[0]:.0f} MB against a 256 MB limit"
        assert r.verdict == verdict, r.message
        if code is forks:
            assert r.limit == ONE_PROCESS, r.message
        else:
            assert r.tests[0].got < 3, r.message  # two threads' 100 MB fit in 256 MB, not ten


@pytest.mark.parametrize("how, k", [("os.kill(os.getpid(), k)", 10), ("os._exit(128 + k)", 23)])
def test_a_hidden_test_crash_names_no_signal_or_status(grade: Grade, tier: str, how: str, k: int) -> None:
    """The signal a run dies of and its exit status are the submission's choice: during a hidden test
    they would carry bits of its input (bwrap reports signal N as status 128 + N, so a status past 128
    was shown). The verdict says crashed (or exited), nothing more; a visible test names the signal."""
    import signal as _signal

    code = f"import os\ndef f(k):\n    if k == 'v':\n        return 'x'\n    {how}\n"
    tests = [{"name": "v", "args": ["v"], "expected": "x", "visible": True},
             {"name": "h", "args": [k], "expected": "x", "visible": False}]
    r = grade(code, tests=tests)
    assert r.verdict in ("crashed", "runtime_error"), r.message
    words = [str(k), str(128 + k), _signal.Signals(k).name]
    for text in (r.message, *(t.message or "" for t in r.tests)):
        assert not any(w in text for w in words), (words, text)
    r = grade(code, tests=[{"name": "v2", "args": [k], "expected": "x", "visible": True}])
    if how.startswith("os.kill"):
        assert r.verdict == "crashed" and _signal.Signals(k).name in r.message, r.message


def test_kernel_keyrings_are_closed_so_runs_share_nothing(grade: Grade, tier: str) -> None:
    mark = f"onsite-key-{secrets.token_hex(4)}"
    add = (
        "import ctypes\n"
        "def f():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    out = []\n"
        "    for ring in (-3, -4, -5):\n"  # session, user, user-session keyrings
        f"        r = libc.syscall({248 if os.uname().machine == 'x86_64' else 217}, b'user', {mark!r}.encode(),"
        " b'secret', 6, ring)\n"
        "        out.append(ctypes.get_errno() if r < 0 else 'added')\n"
        "    return out\n"
    )
    r = grade(add)
    assert r.tests[0].got == [errno.EPERM] * 3, r.tests[0].got
    look = (
        "import ctypes\n"
        "def f():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        f"    r = libc.syscall({249 if os.uname().machine == 'x86_64' else 218}, b'user', {mark!r}.encode(), None, 0)\n"
        "    return ctypes.get_errno() if r < 0 else 'found'\n"
    )
    assert grade(look).tests[0].got == errno.EPERM
    if os.geteuid() == 0:
        assert mark not in Path("/proc/keys").read_text()


def test_sockets_namespaces_and_kernel_interfaces_are_denied(grade: Grade, tier: str) -> None:
    code = (
        "import ctypes, errno, os, socket\n"
        "def f():\n"
        "    out = {}\n"
        "    for name, fam in (('inet', 2), ('inet6', 10), ('netlink', 16), ('vsock', 40), ('unix', 1)):\n"
        "        try: socket.socket(fam, socket.SOCK_STREAM if fam != 16 else socket.SOCK_RAW).close(); out[name] = 'ok'\n"
        "        except OSError as e: out[name] = errno.errorcode.get(e.errno, e.errno)\n"
        "    a, b = socket.socketpair(); a.close(); b.close(); out['socketpair'] = 'ok'\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    for name, (nr, args) in NRS.items():\n"
        "        r = libc.syscall(nr, *args)\n"
        "        out[name] = errno.errorcode.get(ctypes.get_errno(), 0) if r < 0 else 'ok'\n"
        "    return out\n"
    )
    x86 = os.uname().machine == "x86_64"
    # arguments chosen so that, without the filter, each call succeeds or fails with another errno than
    # EPERM (userfaultfd: UFFD_USER_MODE_ONLY, allowed to anyone; mount: EFAULT before the capability check)
    table = {"ptrace": (101, 117, (0, 0, 0, 0)), "bpf": (321, 280, (0, 0, 0)),
             "userfaultfd": (323, 282, (1,)), "perf_event_open": (298, 241, (0, 0, 0, 0, 0)),
             "unshare": (272, 97, (0,)), "keyctl": (250, 219, (0, 0, 0, 0, 0)), "io_uring_setup": (425, 425, (0, 0)),
             "mount": (165, 40, (0, 0, 0, 0, 0)), "umount2": (166, 39, (0, 0)), "chroot": (161, 51, (0,)),
             "setns": (308, 268, (-1, 0)), "open_tree": (428, 428, (-1, 0, 0)),
             "process_vm_readv": (310, 270, (0, 0, 0, 0, 0, 0)), "msgget": (68, 186, (0, 0o1600)),
             "semget": (64, 190, (0, 1, 0o1600)), "open_by_handle_at": (304, 265, (-1, 0, 0))}
    nrs = {name: (x if x86 else a, args) for name, (x, a, args) in table.items()}
    r = grade(f"NRS = {nrs!r}\n" + code)
    got = r.tests[0].got
    assert got["socketpair"] == "ok"
    for name in ("inet", "inet6", "netlink", "vsock"):
        assert got[name] in ("EPERM", "EACCES"), (name, got)
    assert got["unix"] == ("ok" if tier == "bwrap" else "EACCES")
    for name in nrs:
        assert got[name] == "EPERM", (name, got)


def test_an_exit_code_that_looks_like_a_signal_is_not_a_time_limit(grade: Grade, tier: str) -> None:
    r = grade("import os, time\ndef f():\n    time.sleep(0.1)\n    os._exit(152)\n")
    assert r.verdict != "time_limit", r.message
    assert "152" in r.message and "CPU time" not in r.message
    r = grade("import os, signal\ndef f():\n    os.kill(os.getpid(), signal.SIGXCPU)\n")
    assert r.verdict == "crashed" and "SIGXCPU" in r.message and "CPU time" not in r.message
    r = grade("def f():\n    while True:\n        pass\n", time_limit_s=1)
    assert r.verdict == "time_limit"


def test_without_the_filter_the_judge_says_so_and_still_grades(
        tier: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """A machine without seccomp: the judge grades (the rlimits, namespaces and slot sweeps still hold;
    the fork tests above run this way), and says what is missing in selftest and at the bot's start."""
    monkeypatch.setattr(sandbox, "seccomp_status", lambda: (False, "forced off by the test"))
    r = sandbox.run("def f():\n    return 1\n", make_spec(), tier=tier)
    assert r.verdict == "accepted", r.message
    assert sandbox.last_run.one_process is False
    rows = {name: (ok, why) for name, ok, why in sandbox.capabilities(tier)}
    assert any(name.startswith("seccomp") and not ok for name, (ok, _) in rows.items())
    from graders.__main__ import main

    bank = Path(__file__).parent.parent / "fixtures" / "bank"
    status = main(["selftest", str(bank), "--tier", tier])
    out = capsys.readouterr().out
    assert status == 0 and " 0 failures " in out, out  # every reference still accepted, every wrong one refused
    assert "NO   seccomp filter" in out and "; without it a run may start up to" in out, out
    from bot.app import report_judge_tier

    monkeypatch.setattr(sandbox, "detect_tier", lambda: tier)
    with caplog.at_level("INFO", logger="onsite"):
        report_judge_tier()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith("judge: seccomp filter") and "unavailable" in m and "without it a run may start" in m
               for m in warned), warned


def _leave_segment_as(uid: int) -> int:
    """What a run without the filter (an older judge, a host without seccomp) leaves behind: a SysV
    segment owned by a slot uid, which outlives every process. Returns its id."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become the slot uid, create the segment, report its id
        try:
            import ctypes
            os.setgid(uid)
            os.setuid(uid)
            sid = ctypes.CDLL(None, use_errno=True).shmget(0, 4096, 0o1600)
            os.write(w, str(sid).encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r) as f:
        return int(f.read() or -1)


@pytest.mark.skipif(os.geteuid() != 0, reason="slot uids exist only when the judge runs as root")
def test_sysv_memory_left_by_an_earlier_run_is_removed_before_the_slot_is_used(grade: Grade, tier: str) -> None:
    uids = [sandbox.SLOT_UID_BASE + n for n in range(sandbox.SLOT_COUNT)]
    left = {uid: _leave_segment_as(uid) for uid in uids}
    assert all(sid >= 0 for sid in left.values()), left
    try:
        r = grade("def f():\n    return 1\n")
        assert r.verdict == "accepted", r.message
        used = sandbox.last_run.uid
        assert _sysv_segments(used) == []
        # the other slots keep theirs until they are used (another judge on this host may use some meanwhile)
        assert len([u for u in uids if _sysv_segments(u)]) >= len(uids) // 2
    finally:
        for uid in uids:
            sandbox._remove_ipc(uid)
    assert all(_sysv_segments(u) == [] for u in uids)
