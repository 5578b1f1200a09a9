"""Dealing a channel's probes to the researcher's accounts, counterbalanced.

Published team studies send each question from several customer accounts (BDRC's Twystery:
the same queries from 25 accounts). Whoever asks must not be confounded with what is asked or
with whom: were one account to ask all the "delivery" questions, a slow account (a new one a
brand's filter distrusts, say) would look like a hard question. So, on each channel:

1. **each brand hears from as many accounts as it can**: a brand's probes there go to its
   least-used accounts first, so its counts per account differ by at most one and it hears
   from ``min(probes, accounts)`` of them;
2. **each account asks each question about equally often**: among those, the account that has
   asked this probe's question least so far;
3. **and is not tied to a position**: then the one that has sent least at this position in a
   brand's sequence (first, second, …), so that no account always opens the conversation;
4. then the least-used account overall, then a rotation by brand and position.

Probes are dealt position by position (every brand's first probe, then every second one), so
that the tallies of rules 2 and 3 fill evenly. Rules 2–4 are greedy, not exact; the plan's
tests measure the balance they reach (``tests/study/test_plan_accounts.py``). Nothing here is
random and nothing moves a probe's time or question: the accounts are dealt after the plan is
drawn, so a study that adds an account keeps its send times, and a one-account study's plan is
the plan it always was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Seat", "deal_accounts"]


@dataclass(frozen=True)
class Seat:
    """One probe of one channel as the dealing sees it: whose it is, its place in that brand's
    sequence on the channel (0 = first), and its question."""

    brand: int  # the brand's index among the brands asked on the channel
    position: int
    question: str


def deal_accounts(seats: Sequence[Seat], accounts: Sequence[str]) -> list[str]:
    """The account of each seat, in the order of ``seats`` (see the module docstring)."""
    n = len(accounts)
    if n == 1:
        return [accounts[0]] * len(seats)
    dealing = _Dealing(seats, n)
    for s in sorted(range(len(seats)), key=lambda j: (seats[j].position, seats[j].brand)):
        seat = seats[s]
        turn = seat.brand + seat.position
        brand = dealing.brand[seat.brand]
        dealing.put(s, min(range(n), key=lambda k: (brand[k], dealing.cost(s, k),
                                                    (k - turn) % n)))
    dealing.improve()
    return [accounts[a] for a in dealing.dealt]


class _Dealing:
    """The tallies of a dealing in progress, and the moves that improve it.

    The cost of a dealing is the sum of squares of its tallies (account × question, account ×
    position, account), weighted 3 : 2 : 1 because a question confounded with an account
    matters most: smallest when they are all equal. Greedy dealing leaves it a little
    above that (an account can end up asking one question three times more than another), so
    :meth:`improve` then swaps the accounts of two probes of one brand, or moves a probe to
    one of its brand's less-used accounts, while that lowers the cost. Neither move changes any
    brand's tally by more than it allows (rule 1 holds throughout), and each lowers the cost,
    so it ends."""

    def __init__(self, seats: Sequence[Seat], n: int) -> None:
        self.seats = seats
        self.n = n
        self.dealt = [-1] * len(seats)
        self.brand: dict[int, list[int]] = {s.brand: [0] * n for s in seats}
        self.question: dict[str, list[int]] = {s.question: [0] * n for s in seats}
        self.position: dict[int, list[int]] = {s.position: [0] * n for s in seats}
        self.total = [0] * n
        self.of_brand: dict[int, list[int]] = {}
        for j, seat in enumerate(seats):
            self.of_brand.setdefault(seat.brand, []).append(j)

    def _tallies(self, s: int) -> tuple[list[int], list[int], list[int]]:
        seat = self.seats[s]
        return self.question[seat.question], self.position[seat.position], self.total

    def cost(self, s: int, a: int) -> int:
        """What dealing seat ``s`` to account ``a`` adds to the cost."""
        question, position, total = self._tallies(s)
        return 3 * (2 * question[a] + 1) + 2 * (2 * position[a] + 1) + 2 * total[a] + 1

    def put(self, s: int, a: int) -> None:
        self.dealt[s] = a
        self.brand[self.seats[s].brand][a] += 1
        for tally in self._tallies(s):
            tally[a] += 1

    def take(self, s: int) -> int:
        a = self.dealt[s]
        self.brand[self.seats[s].brand][a] -= 1
        for tally in self._tallies(s):
            tally[a] -= 1
        return a

    def improve(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            changed = False
            for probes in self.of_brand.values():
                for i, s in enumerate(probes):
                    changed |= self._move(s)
                    for t in probes[i + 1:]:
                        changed |= self._swap(s, t)
            if not changed:
                return

    def _move(self, s: int) -> bool:
        """Deal ``s`` to a less-used account of its brand, if that lowers the cost."""
        a = self.take(s)
        brand = self.brand[self.seats[s].brand]
        best = min((k for k in range(self.n) if brand[k] <= brand[a]),
                   key=lambda k: (self.cost(s, k), k != a))
        self.put(s, best)
        return best != a

    def _swap(self, s: int, t: int) -> bool:
        """Swap the accounts of two probes of one brand, if that lowers the cost."""
        if self.dealt[s] == self.dealt[t]:
            return False
        a, b = self.take(s), self.take(t)
        before = self.cost(s, a) + self._after(s, a, t, b)
        after = self.cost(s, b) + self._after(s, b, t, a)
        if after < before:
            a, b = b, a
        self.put(s, a)
        self.put(t, b)
        return after < before

    def _after(self, s: int, a: int, t: int, b: int) -> int:
        """The cost of dealing ``t`` to ``b`` once ``s`` is dealt to ``a``."""
        self.put(s, a)
        cost = self.cost(t, b)
        self.take(s)
        return cost
