"""Bench (a) and (b): end-to-end grading through graders.sandbox.run against a bare interpreter.

(a) a correct pure-Python solution with 20 tests over `python -I -c pass`          goal <= 1.5
(b) a correct numpy solution (softmax fixture) over `python -I -c "import numpy"`  goal <= 1.3
Usage: python bench/grader_startup.py [--tier bwrap|rlimit]
"""

from __future__ import annotations

import argparse

from grader_common import PURE, bare, interleaved, numpy_reference, numpy_spec, pure_spec_20

from graders import sandbox


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tier", choices=sandbox.TIERS, default=None)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tier = args.tier or sandbox.detect_tier()

    spec = pure_spec_20()
    assert sandbox.run(PURE, spec, tier).verdict == "accepted"
    base, judge = interleaved(bare(["-I", "-c", "pass"]), lambda: sandbox.run(PURE, spec, tier), args.rounds)
    print(f"(a) tier={tier} pure-Python, 20 tests: judge {judge:.1f} ms, python -I -c pass {base:.1f} ms, "
          f"ratio {judge / base:.2f} (goal <= 1.5)")
    # The judge starts its interpreter with -S (no site, no .pth code): the same flags, for the record.
    base_s, judge_s = interleaved(bare(["-I", "-S", "-c", "pass"]), lambda: sandbox.run(PURE, spec, tier), args.rounds)
    print(f"    same flags: judge {judge_s:.1f} ms, python -I -S -c pass {base_s:.1f} ms, ratio {judge_s / base_s:.2f}")

    nspec, ncode = numpy_spec(), numpy_reference()
    assert sandbox.run(ncode, nspec, tier).verdict == "accepted"
    base, judge = interleaved(bare(["-I", "-c", "import numpy"]), lambda: sandbox.run(ncode, nspec, tier),
                              args.rounds)
    print(f"(b) tier={tier} numpy softmax, {len(nspec.tests)} tests: judge {judge:.1f} ms, "
          f"python -I -c 'import numpy' {base:.1f} ms, ratio {judge / base:.2f} (goal <= 1.3)")


if __name__ == "__main__":
    main()
