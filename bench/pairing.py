"""Benchmark (issue 5): pairing speed at 10,000 members and quality against the optimum at ~300.

Goals: pairing 10,000 opted-in members with history under 5 s; total weight within 2% of networkx's
`max_weight_matching` (the exact optimum) on instances of about 300 members.

Members get 1-3 tracks, a level, one of eight timezones and evening availability (3 hours on
~60% of days, in their own time); history marks half as many random pairs as there are members as
having met 1-6 rounds ago. Prints the time and its ratio to the goal, then for several seeded
300-member rounds our weight over the optimum (the goal is >= 0.98), with networkx's own time in the
same run for scale (`pip install networkx`, part of the test extra).
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.pairing import LEVELS, Candidate, History, pair_members, weight

TRACKS = ("coding", "ml-coding", "ml-theory", "system-design", "behavioral")
GOAL_S = 5.0


def generate(n: int, seed: int) -> tuple[list[Candidate], History]:
    rng = random.Random(seed)
    members = []
    for i in range(n):
        offset = rng.choice((-8, -5, -3, 0, 1, 5.5, 8, 9))
        hours = 0
        for day in range(7):
            if rng.random() < 0.6:
                start = int((18 - offset) % 24)
                for h in range(3):
                    hours |= 1 << ((day * 24 + start + h) % 168)
        avoid = frozenset(rng.sample(range(n), 1)) - {i} if rng.random() < 0.03 else frozenset()
        members.append(Candidate(i, frozenset(rng.sample(TRACKS, rng.randint(1, 3))), rng.choice(LEVELS), offset,
                                 hours, avoid, rng.randint(0, 6), rng.randint(0, 6)))
    last_met = {}
    for _ in range(n // 2):
        a, b = rng.sample(range(n), 2)
        last_met[(min(a, b), max(a, b))] = rng.randint(1, 6)
    return members, History(last_met)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    members, history = generate(args.members, 1)
    start = time.perf_counter()
    result = pair_members(members, history, seed=1)
    elapsed = time.perf_counter() - start
    placed = sum(len(g.members) for g in result.groups)
    print(f"paired {placed:,} of {len(members):,} members into {len(result.groups):,} groups "
          f"({len(result.unplaced)} unplaced by avoid-lists) in {elapsed:.2f} s")
    print(f"ratio time / goal ({GOAL_S:.0f} s): {elapsed / GOAL_S:.2f}  (< 1 meets the goal)")

    try:
        import networkx as nx
    except ImportError:
        print("networkx is not installed: skipping the optimality comparison")
        return
    ratios, ours_t, nx_t = [], [], []
    for seed in range(args.rounds):
        small, hist = generate(args.small, 100 + seed)
        graph = nx.Graph()
        for a, b in itertools.combinations(small, 2):
            w = weight(a, b, hist)
            if w is not None:
                graph.add_edge(a.id, b.id, weight=w)
        t0 = time.perf_counter()
        optimum = sum(graph[a][b]["weight"] for a, b in nx.max_weight_matching(graph))
        nx_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours = pair_members(small, hist, seed=seed)
        ours_t.append(time.perf_counter() - t0)
        pair_weight = sum(g.weight for g in ours.groups if len(g.members) == 2)
        ratios.append(pair_weight / optimum)
    print(f"{args.small}-member rounds: our weight / optimum = {', '.join(f'{r:.4f}' for r in ratios)} "
          f"(worst {min(ratios):.4f}; goal >= 0.98)")
    print(f"same-run times: ours {statistics.median(ours_t):.2f} s, networkx {statistics.median(nx_t):.2f} s (median)")


if __name__ == "__main__":
    main()
