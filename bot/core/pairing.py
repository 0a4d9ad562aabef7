"""Who practises with whom: a pure function from members and history to groups (no I/O).

Weight of a pair (higher is better; `None` when the pair is forbidden):
- forbidden when either member avoids the other (always), or when they met in the last
  `COOLDOWN_ROUNDS` rounds (a hard cooldown, relaxed only for members who could otherwise not be
  placed at all);
- `BASE` (50), so any allowed pair beats leaving two people unmatched;
- availability: +3 per shared weekly hour (UTC), capped at 10 hours; with no shared hour,
  -1 per hour of timezone difference instead;
- level: +6 for the same level, -3 for every step apart (junior, mid, senior, staff);
- tracks: +4 per shared track; -20 when they share none (the pack needs a track both chose);
- an earlier partner beyond the cooldown: -30, halved for every further round since.

Algorithm: every member gets a candidate list (all others when there are at most
`EXACT_CANDIDATES` members, else the nearest by timezone among those sharing a track plus a seeded
sample); candidate edges are matched greedily by weight, grown to maximum cardinality with
Edmonds' blossom algorithm (short augmenting paths only above `EXACT_CANDIDATES` members), then
improved by 2-opt swaps between
matched pairs and by rotations around three pairs along each member's best neighbours, until no
move helps. On instances of ~300 members this stays within 2% of the
maximum-weight matching (bench/pairing.py measures it against networkx). An odd member out joins
the group of two where they add the most weight (one group of three); anyone who still cannot be
placed because of avoid-lists is reported, never silently dropped. When the heuristic cannot
place everyone under the cooldown and the round has at most 12 members, every grouping is tried.

Roles: in each group the member with fewer interviewer turns in their history interviews first;
in a trio the turns rotate in that order. Everything that could tie is broken by the seed, so the
same input and seed give the same groups.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

LEVELS: tuple[str, ...] = ("junior", "mid", "senior", "staff")
BASE = 50.0
COOLDOWN_ROUNDS = 2
REPEAT_PENALTY = 30.0
EXACT_CANDIDATES = 400
CANDIDATES_PER_MEMBER = 40
TOP_NEIGHBOURS = 8
EXHAUSTIVE_MAX = 12


@dataclass(frozen=True)
class Candidate:
    """One opted-in member as the pairing sees them."""

    id: int
    tracks: frozenset[str]
    level: str = "mid"
    utc_offset_h: float = 0.0
    hours: int = 0  # bit h (0..167) set when available in that UTC hour of the week (Monday 00:00 = 0)
    avoid: frozenset[int] = frozenset()
    interviewer_turns: int = 0
    interviewee_turns: int = 0


@dataclass(frozen=True)
class History:
    """`last_met[(a, b)]` (a < b) = how many rounds ago a and b were last grouped (1 = last round)."""

    last_met: Mapping[tuple[int, int], int] = field(default_factory=dict)

    def rounds_since(self, a: int, b: int) -> int | None:
        return self.last_met.get((a, b) if a < b else (b, a))


@dataclass(frozen=True)
class Group:
    """Members in interview order: members[0] interviews first, then the turns rotate."""

    members: tuple[int, ...]
    weight: float


@dataclass(frozen=True)
class Result:
    groups: tuple[Group, ...]
    unplaced: tuple[int, ...]  # could not be placed with anyone allowed (avoid-lists)
    repeats_avoided: int  # members whose best-weighted partner was a recent one, kept apart by the cooldown
    cooldown_relaxed: tuple[int, ...]  # members placed with a recent partner because nothing else was possible


def weight(a: Candidate, b: Candidate, history: History, *, cooldown: bool = True) -> float | None:
    """The documented pair weight, or None when the pair is not allowed."""
    if a.id == b.id or b.id in a.avoid or a.id in b.avoid:
        return None
    since = history.rounds_since(a.id, b.id)
    if cooldown and since is not None and since <= COOLDOWN_ROUNDS:
        return None
    w = BASE
    shared_hours = (a.hours & b.hours).bit_count()
    w += 3.0 * min(shared_hours, 10) if shared_hours else -abs(a.utc_offset_h - b.utc_offset_h)
    gap = abs(_level(a.level) - _level(b.level))
    w += 6.0 if gap == 0 else -3.0 * gap
    shared_tracks = len(a.tracks & b.tracks)
    w += 4.0 * shared_tracks if shared_tracks else -20.0
    if since is not None:
        w -= REPEAT_PENALTY * 0.5 ** max(0, since - COOLDOWN_ROUNDS - 1) if since > COOLDOWN_ROUNDS else REPEAT_PENALTY
    return w


def _level(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else 1


def pair_members(members: Sequence[Candidate], history: History, *, seed: int = 0) -> Result:
    """Group everyone: pairs, one trio when the count is odd, and a report of what could not be done."""
    rng = random.Random(seed)
    by_id = {m.id: m for m in members}
    ids = sorted(by_id)
    if len(ids) != len(members):
        raise ValueError("duplicate member ids")
    edges = _candidate_edges([by_id[i] for i in ids], history, rng, cooldown=True)
    mate = _greedy(edges)
    if len(ids) <= EXACT_CANDIDATES:
        _augment(mate, edges)
    else:
        _augment_short(mate, edges)
    _two_opt(mate, by_id, history, cooldown=True)

    unmatched = [i for i in ids if i not in mate]
    relaxed: list[int] = []
    if len(unmatched) >= 2:  # pair leftovers with each other, relaxing the cooldown if that is the only way
        rest = [by_id[i] for i in unmatched]
        extra = _greedy(_candidate_edges(rest, history, rng, cooldown=False, exhaustive=True))
        for a, b in extra.items():
            if a < b:
                mate[a], mate[b] = b, a
                if weight(by_id[a], by_id[b], history) is None:
                    relaxed += [a, b]
        unmatched = [i for i in ids if i not in mate]

    pairs = sorted({(min(a, b), max(a, b)) for a, b in mate.items()})
    groups: list[list[int]] = [list(p) for p in pairs]
    unplaced: list[int] = []
    for loner in unmatched:  # at most one for an even split; more only when avoid-lists leave no choice
        target = _best_trio(loner, groups, by_id, history, rng, cooldown=True)
        if target is None:  # swap the loner into a pair whose displaced member can join a trio
            swapped = _swap_into_trio(loner, groups, by_id, history, rng)
            if swapped:
                continue
            target = _best_trio(loner, groups, by_id, history, rng, cooldown=False)
            if target is not None:
                relaxed.append(loner)
        if target is None:
            unplaced.append(loner)
        else:
            target.append(loner)

    if (unplaced or relaxed) and len(ids) <= EXHAUSTIVE_MAX:
        exact = _exhaustive(ids, by_id, history)
        if exact is not None:
            groups, unplaced, relaxed = exact, [], []

    built = tuple(sorted((_group(g, by_id, history, rng) for g in groups), key=lambda g: g.members))
    avoided = _repeats_avoided(ids, by_id, history, mate)
    return Result(built, tuple(unplaced), avoided, tuple(sorted(set(relaxed))))


def _exhaustive(ids: Sequence[int], by_id: Mapping[int, Candidate], history: History) -> list[list[int]] | None:
    """For small rounds the heuristic could not fully place: the best grouping that honours every
    avoid-list and the cooldown, by trying them all (pairs, plus one trio when the count is odd)."""
    best: list[list[int]] | None = None
    best_w = float("-inf")

    def w(a: int, b: int) -> float | None:
        return weight(by_id[a], by_id[b], history)

    def search(rest: list[int], acc: list[list[int]], total: float, need_trio: bool) -> None:
        nonlocal best, best_w
        if not rest:
            if total > best_w:
                best, best_w = [list(g) for g in acc], total
            return
        first, others = rest[0], rest[1:]
        for i, b in enumerate(others):
            wb = w(first, b)
            if wb is None:
                continue
            remaining = others[:i] + others[i + 1 :]
            if not need_trio or len(remaining) >= 3:
                search(remaining, [*acc, [first, b]], total + wb, need_trio)
            if need_trio:
                for c in others[i + 1 :]:
                    wc, wbc = w(first, c), w(b, c)
                    if wc is None or wbc is None:
                        continue
                    left = [x for x in others if x not in (b, c)]
                    search(left, [*acc, [first, b, c]], total + wb + wc + wbc, False)

    search(list(ids), [], 0.0, len(ids) % 2 == 1)
    return best


def _best_trio(
    loner: int, groups: list[list[int]], by_id: Mapping[int, Candidate], history: History, rng: random.Random,
    *, cooldown: bool,
) -> list[int] | None:
    """The pair the loner adds the most weight to (both new edges allowed), or None."""
    best, best_w = None, float("-inf")
    for g in groups:
        if len(g) != 2:
            continue
        ws = [weight(by_id[loner], by_id[x], history, cooldown=cooldown) for x in g]
        if any(w is None for w in ws):
            continue
        total = sum(w for w in ws if w is not None) + rng.random() * 1e-9
        if total > best_w:
            best, best_w = g, total
    return best


def _swap_into_trio(
    loner: int, groups: list[list[int]], by_id: Mapping[int, Candidate], history: History, rng: random.Random
) -> bool:
    """Place the loner in a pair instead of one of its members, who then joins another pair as a trio
    (all under the cooldown). Returns whether it worked."""
    for g in groups:
        if len(g) != 2:
            continue
        for out in list(g):
            stay = g[1] if g[0] == out else g[0]
            if weight(by_id[loner], by_id[stay], history) is None:
                continue
            others = [h for h in groups if h is not g]
            target = _best_trio(out, others, by_id, history, rng, cooldown=True)
            if target is not None:
                g[:] = [stay, loner]
                target.append(out)
                return True
    return False


def _candidate_edges(
    members: Sequence[Candidate], history: History, rng: random.Random, *, cooldown: bool, exhaustive: bool = False
) -> list[tuple[float, float, int, int]]:
    """(weight, tie-break, a, b) for every allowed candidate pair, each pair once."""
    seen: set[tuple[int, int]] = set()
    edges: list[tuple[float, float, int, int]] = []

    def add(a: Candidate, b: Candidate) -> None:
        key = (a.id, b.id) if a.id < b.id else (b.id, a.id)
        if key in seen:
            return
        seen.add(key)
        w = weight(a, b, history, cooldown=cooldown)
        if w is not None:
            edges.append((w, rng.random(), key[0], key[1]))

    if exhaustive or len(members) <= EXACT_CANDIDATES:
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                add(a, b)
        return edges
    by_track: dict[str, list[Candidate]] = {}
    for m in members:
        for t in m.tracks:
            by_track.setdefault(t, []).append(m)
    for pool in by_track.values():
        pool.sort(key=lambda m: (m.utc_offset_h, m.id))
    per_track = max(4, CANDIDATES_PER_MEMBER // 2)
    for a in members:
        for t in a.tracks:
            pool = by_track[t]
            # nearest by timezone within the track: a window around a's position
            lo = _bisect(pool, a.utc_offset_h)
            window = pool[max(0, lo - per_track // 2) : lo + per_track // 2 + 1]
            for b in window:
                add(a, b)
        for b in rng.sample(members, min(len(members), CANDIDATES_PER_MEMBER // 4)):
            add(a, b)
    return edges


def _bisect(pool: Sequence[Candidate], offset: float) -> int:
    lo, hi = 0, len(pool)
    while lo < hi:
        mid = (lo + hi) // 2
        if pool[mid].utc_offset_h < offset:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _greedy(edges: list[tuple[float, float, int, int]]) -> dict[int, int]:
    mate: dict[int, int] = {}
    for _, _, a, b in sorted(edges, reverse=True):
        if a not in mate and b not in mate:
            mate[a], mate[b] = b, a
    return mate


def _augment(mate: dict[int, int], edges: Sequence[tuple[float, float, int, int]]) -> None:
    """Grow the matching to maximum cardinality over the allowed edges (Edmonds' blossom algorithm),
    so nobody is left to a relaxed cooldown or a trio when a full pairing exists."""
    ids = sorted({e[2] for e in edges} | {e[3] for e in edges})
    if not ids:
        return
    index = {v: i for i, v in enumerate(ids)}
    n = len(ids)
    adj: list[list[int]] = [[] for _ in range(n)]
    for _, _, a, b in sorted(edges, reverse=True):
        adj[index[a]].append(index[b])
        adj[index[b]].append(index[a])
    match = [-1] * n
    for a, b in mate.items():
        if a in index and b in index:
            match[index[a]] = index[b]

    def find_path(root: int) -> tuple[int, list[int]]:
        used = [False] * n
        parent = [-1] * n
        base = list(range(n))
        used[root] = True
        queue = [root]
        head = 0

        def lca(a: int, b: int) -> int:
            seen = [False] * n
            while True:
                a = base[a]
                seen[a] = True
                if match[a] == -1:
                    break
                a = parent[match[a]]
            while True:
                b = base[b]
                if seen[b]:
                    return b
                b = parent[match[b]]

        def mark(v: int, b: int, child: int, blossom: list[bool]) -> None:
            while base[v] != b:
                blossom[base[v]] = blossom[base[match[v]]] = True
                parent[v] = child
                child = match[v]
                v = parent[match[v]]

        while head < len(queue):
            v = queue[head]
            head += 1
            for to in adj[v]:
                if base[v] == base[to] or match[v] == to:
                    continue
                if to == root or (match[to] != -1 and parent[match[to]] != -1):
                    current = lca(v, to)
                    blossom = [False] * n
                    mark(v, current, to, blossom)
                    mark(to, current, v, blossom)
                    for i in range(n):
                        if blossom[base[i]]:
                            base[i] = current
                            if not used[i]:
                                used[i] = True
                                queue.append(i)
                elif parent[to] == -1:
                    parent[to] = v
                    if match[to] == -1:
                        return to, parent
                    used[match[to]] = True
                    queue.append(match[to])
        return -1, parent

    for root in range(n):
        if match[root] != -1 or not adj[root]:
            continue
        v, parent = find_path(root)
        while v != -1:  # flip the augmenting path that ends at v
            pv = parent[v]
            ppv = match[pv]
            match[v], match[pv] = pv, v
            v = ppv
    mate.clear()
    for i, j in enumerate(match):
        if j != -1:
            mate[ids[i]] = ids[j]


def _augment_short(mate: dict[int, int], edges: Sequence[tuple[float, float, int, int]]) -> None:
    """For large rounds: augmenting paths of length three only (u - v = w - x), cheap and usually enough."""
    adj: dict[int, list[int]] = {}
    for _, _, a, b in sorted(edges, reverse=True):
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    for u in sorted(adj):
        if u in mate:
            continue
        done = False
        for v in adj[u]:
            if v not in mate:
                mate[u], mate[v] = v, u
                break
            w = mate[v]
            for x in adj.get(w, ()):
                if x != u and x not in mate:
                    mate[u], mate[v] = v, u
                    mate[w], mate[x] = x, w
                    done = True
                    break
            if done:
                break


def _two_opt(mate: dict[int, int], by_id: Mapping[int, Candidate], history: History, *, cooldown: bool) -> None:
    """Swap partners between two pairs while that raises the total weight."""
    pairs = sorted({(min(a, b), max(a, b)) for a, b in mate.items()})
    if len(pairs) > 3000:  # the greedy result is kept for very large rounds (time budget)
        return

    def w(a: int, b: int) -> float | None:
        return weight(by_id[a], by_id[b], history, cooldown=cooldown)

    current = {p: (w(*p) or 0.0) for p in pairs}
    improved = True
    rounds = 0
    while improved and rounds < 20:
        improved = False
        rounds += 1
        for i in range(len(pairs)):
            a, b = pairs[i]
            for j in range(i + 1, len(pairs)):
                c, d = pairs[j]
                before = current[pairs[i]] + current[pairs[j]]
                for x, y, u, v in ((a, c, b, d), (a, d, b, c)):
                    w1, w2 = w(x, y), w(u, v)
                    if w1 is None or w2 is None or w1 + w2 <= before + 1e-9:
                        continue
                    p1, p2 = (min(x, y), max(x, y)), (min(u, v), max(u, v))
                    del current[pairs[i]], current[pairs[j]]
                    pairs[i], pairs[j] = p1, p2
                    current[p1], current[p2] = w1, w2
                    a, b = p1
                    improved = True
                    break
    mate.clear()
    for a, b in pairs:
        mate[a], mate[b] = b, a
    _three_opt(mate, by_id, history, cooldown=cooldown)


def _three_opt(mate: dict[int, int], by_id: Mapping[int, Candidate], history: History, *, cooldown: bool) -> None:
    """Rotate partners around three pairs (a-b, c-d, e-f -> a-c, d-e, f-b) along each member's best
    neighbours while that raises the total weight: the moves 2-opt cannot see."""
    if len(mate) > 2 * 3000:
        return
    cache: dict[tuple[int, int], float | None] = {}

    def w(a: int, b: int) -> float | None:
        key = (a, b) if a < b else (b, a)
        if key not in cache:
            cache[key] = weight(by_id[a], by_id[b], history, cooldown=cooldown)
        return cache[key]

    matched = sorted(mate)
    top: dict[int, list[int]] = {}
    for a in matched:
        scored = [(w(a, b), b) for b in matched if b != a]
        top[a] = [b for wt, b in sorted((x for x in scored if x[0] is not None), reverse=True)[:TOP_NEIGHBOURS]]
    for _ in range(10):
        improved = False
        for a in matched:
            b = mate[a]
            for c in top[a]:
                d = mate.get(c)
                if c == b or d is None or d in (a, b):
                    continue
                for e in top[d]:
                    f = mate.get(e)
                    if f is None or e in (a, b, c, d) or f in (a, b, c, d):
                        continue
                    new = [w(a, c), w(d, e), w(f, b)]
                    if any(x is None for x in new):
                        continue
                    before = (w(a, b) or 0.0) + (w(c, d) or 0.0) + (w(e, f) or 0.0)
                    if sum(x for x in new if x is not None) > before + 1e-9:
                        mate[a], mate[c] = c, a
                        mate[d], mate[e] = e, d
                        mate[f], mate[b] = b, f
                        improved = True
                        break
                if mate[a] != b:
                    break
        if not improved:
            return


def _group(members: list[int], by_id: Mapping[int, Candidate], history: History, rng: random.Random) -> Group:
    order = sorted(
        members,
        key=lambda i: (by_id[i].interviewer_turns - by_id[i].interviewee_turns, by_id[i].interviewer_turns, rng.random()),
    )
    total = 0.0
    for i, a in enumerate(members):
        for b in members[i + 1 :]:
            total += weight(by_id[a], by_id[b], history, cooldown=False) or 0.0
    return Group(tuple(order), total)


def _repeats_avoided(ids: Sequence[int], by_id: Mapping[int, Candidate], history: History, mate: Mapping[int, int]) -> int:
    """Members whose most recent partner is also in this round and was kept away by the cooldown."""
    recent: dict[int, int] = {}
    for (a, b), since in history.last_met.items():
        if since <= COOLDOWN_ROUNDS and a in by_id and b in by_id:
            recent[a] = recent.get(a, 0) + 1
            recent[b] = recent.get(b, 0) + 1
    return sum(1 for i in ids if recent.get(i) and not _met_recently(i, mate.get(i), history))


def _met_recently(a: int, b: int | None, history: History) -> bool:
    since = history.rounds_since(a, b) if b is not None else None
    return since is not None and since <= COOLDOWN_ROUNDS
