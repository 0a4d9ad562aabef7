"""Hostile submissions against real sandboxes, in both tiers: each asserts the verdict AND that the
bad effect did not happen (no process left, nothing written, nothing leaked, the judge alive)."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graders import sandbox
from graders.result import GradeResult

Grade = Callable[..., GradeResult]


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


def test_fork_bomb(grade: Grade, tier: str) -> None:
    t = time.monotonic()
    r = grade("import os\ndef f():\n    while True:\n        os.fork()\n")
    assert r.verdict in ("runtime_error", "time_limit", "crashed"), r.message
    assert r.verdict != "accepted"
    assert time.monotonic() - t < 6


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


def test_setsid_orphan_is_killed(grade: Grade, tier: str, tmp_path: Path) -> None:
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
