"""CLI: ``python -m graders check FILE --question ID_OR_PATH [--json]``, ``selftest [DIR]`` and ``worker --database URL``."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import generated, sandbox
from .generated import GenerationError
from .result import ACCEPTED, INTERNAL_ERROR, TIME_LIMIT, GradeResult
from .spec import CodeSpec, SpecError, default_bank_dir, is_code_question, load_spec, read_question


def _print_human(r: GradeResult) -> None:
    print(f"{r.verdict}: {r.passed}/{r.total} tests passed in {r.time_ms} ms (tier {r.tier})")
    if r.limit:
        print(f"limit: {r.limit}")
    print(r.message)
    for t in r.tests:
        line = f"  {t.verdict:<14} {t.name} ({t.time_ms:.1f} ms)"
        if t.visible and t.verdict not in ("accepted", "skipped"):
            line += f": input {t.input!r}, expected {t.expected!r}, got {t.got!r}"
        print(line)
    if r.stdout:
        print("--- stdout ---")
        print(r.stdout)
    if r.stderr:
        print("--- stderr ---")
        print(r.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    """Grade one file; exit 0 when accepted, 1 when rejected, 2 on usage or judge errors."""
    try:
        spec = load_spec(args.question)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        code = Path(args.file).read_bytes().decode("utf-8", "replace")
    except OSError as e:
        print(f"error: cannot read {args.file}: {e}", file=sys.stderr)
        return 2
    try:
        spec = generated.prepare(spec, args.tier)
    except GenerationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = sandbox.run(code, spec, tier=args.tier)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        _print_human(result)
    if result.verdict == INTERNAL_ERROR:
        return 2
    return 0 if result.verdict == ACCEPTED else 1


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1, got {text!r}")
    return int(text)


def _selftest_files(files: list[Path], args: argparse.Namespace, pool: ThreadPoolExecutor) -> tuple[int, int, int]:
    """(failures, code questions, runs) of selftest over these question files, failures printed."""
    failures = 0
    questions = 0
    runs = 0
    for path in files:
        try:
            data = read_question(path)
        except SpecError as e:
            print(f"FAIL {path}: {e}")
            failures += 1
            continue
        if not is_code_question(data):
            continue
        questions += 1
        try:
            spec = CodeSpec.from_dict(data)
        except SpecError as e:
            print(f"FAIL {path}: {e}")
            failures += 1
            continue
        try:
            spec = generated.prepare(spec, args.tier)
        except GenerationError as e:
            print(f"FAIL {path}: {e}")
            failures += 1
            continue
        if not spec.reference:
            print(f"FAIL {path}: reference: a code question needs a reference solution")
            failures += 1
        if not spec.wrong:
            print(f"FAIL {path}: wrong: a code question needs at least one wrong solution")
            failures += 1
        solutions = [("reference", spec.reference, "accepted")] if spec.reference else []
        solutions += [(f"second[{n}]", code, "accepted") for n, code in enumerate(spec.second, 1)]
        solutions += [(f"wrong[{n}]", code, "rejected") for n, code in enumerate(spec.wrong, 1)]
        solutions += [(f"slow[{n}]", code, TIME_LIMIT) for n, code in enumerate(spec.slow, 1)]
        # the runs of one question at a time, `--jobs` of them at once (each a sandbox of its own, as
        # the bot's pool runs them); only one question's generated tests are held at a time
        verdicts = pool.map(functools.partial(sandbox.run, spec=spec, tier=args.tier), (code for _, code, _ in solutions))
        for (label, _, want), r in zip(solutions, verdicts, strict=True):
            runs += 1
            first = r.message.splitlines()[0] if r.message else ""
            if r.verdict == INTERNAL_ERROR:
                print(f"FAIL {path}: {label}: {r.message}")
            elif want == "accepted" and r.verdict != ACCEPTED:
                print(f"FAIL {path}: {label} got {r.verdict}: {first}")
            elif want == "rejected" and r.verdict == ACCEPTED:
                print(f"FAIL {path}: {label} was accepted; add a test that rejects it")
            elif want == TIME_LIMIT and r.verdict != TIME_LIMIT:
                print(f"FAIL {path}: {label} got {r.verdict}, not time_limit ({r.time_ms} ms, limit "
                      f"{spec.time_limit_s:g} s); make the generated tests larger: {first}")
            else:
                continue
            failures += 1
    return failures, questions, runs


def cmd_selftest(args: argparse.Namespace) -> int:
    """Every code question's reference and second solutions are accepted, every wrong solution is
    rejected and every slow one gets time_limit; generated tests are built (and cached) first."""
    bank = Path(args.dir) if args.dir else default_bank_dir()
    files = sorted(p for p in bank.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if args.only:
        wanted = {i.strip() for item in args.only for i in item.split(",") if i.strip()}
        files = [p for p in files if p.stem in wanted]
        if missing := sorted(wanted - {p.stem for p in files}):
            print(f"error: no question file for {', '.join(missing)} under {bank}", file=sys.stderr)
            return 2
    with ThreadPoolExecutor(max_workers=args.jobs or os.cpu_count() or 1, thread_name_prefix="selftest") as pool:
        failures, questions, runs = _selftest_files(files, args, pool)
    tier = args.tier or sandbox.detect_tier()
    for name, ok, why in sandbox.capabilities(tier):
        print(f"{'yes' if ok else 'NO ':<4} {name}: {why}")
    print(f"selftest: {questions} code questions, {runs} runs, {failures} failures (tier {tier}, bank {bank})")
    return 1 if failures else 0


def cmd_worker(args: argparse.Namespace) -> int:
    from . import worker  # psycopg is imported only by a worker on PostgreSQL

    return worker.main(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graders", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="grade one file against one question")
    c.add_argument("file")
    c.add_argument("--question", "-q", required=True, help="question id (searched in questions/) or a YAML path")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--tier", choices=sandbox.TIERS, default=None, help="force a sandbox tier")
    c.set_defaults(func=cmd_check)
    s = sub.add_parser("selftest", help="references and second solutions pass, wrong ones fail, slow ones time out")
    s.add_argument("dir", nargs="?", default=None)
    s.add_argument("--tier", choices=sandbox.TIERS, default=None)
    s.add_argument("--only", action="append", default=[], metavar="ID[,ID...]",
                   help="check only these questions (repeat or separate with commas)")
    s.add_argument("--jobs", "-j", type=_positive, default=None, metavar="N",
                   help="sandboxes run at once (default: one per core)")
    s.set_defaults(func=cmd_selftest)
    w = sub.add_parser("worker", help="grade queued jobs from the bot's database (no chat tokens needed)")
    w.add_argument("--database", default=None, metavar="URL",
                   help="postgresql://... or sqlite:///FILE (default: ONSITE_DATABASE_URL)")
    w.add_argument("--tier", choices=sandbox.TIERS, default=None)
    w.add_argument("--lease", type=float, default=60.0, metavar="S", help="seconds a claim lasts unless renewed")
    w.add_argument("--poll", type=float, default=5.0, metavar="S", help="longest wait between looks at the queue")
    w.add_argument("--max-jobs", type=int, default=None, help="stop after grading this many")
    w.add_argument("--idle-exit", type=float, default=None, metavar="S", help="stop after this long with no work")
    w.set_defaults(func=cmd_worker)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
