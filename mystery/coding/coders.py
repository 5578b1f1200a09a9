"""Whose codes drive the timings: the main coder.

Two researchers may code the same replies blind, so that ``mystery code --agreement`` can report
Cohen's kappa (:mod:`mystery.coding.review`). The timings must not then depend on who happened to
code last, so the rule is explicit: the codes of one coder, the *main coder*, override the automatic
codes; every other coder's codes are kept for agreement and never change a timing.

The main coder is recorded in the store's meta (``mystery.store.store.MAIN_CODER``). By default it
is the first coder who codes in the store (recorded in the same transaction as their first code,
so it never depends on later edits); ``mystery code STUDY --main-coder NAME`` changes it
deliberately, to someone who has coded. A reply the main coder has not coded keeps its automatic
code, whatever the other coders said: a timing is one person's judgement or the rule's, never a
patchwork of several people's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from mystery.coding.review import check_coder
from mystery.errors import MysteryError
from mystery.store.store import MAIN_CODER, Store

Role = Literal["main", "first", "second"]
"""A coder's place: ``main`` (their codes drive the timings), ``first`` (nobody has coded yet,
so their codes will), ``second`` (kept for agreement only)."""


@dataclass(frozen=True)
class Coders:
    """Who coded in a store, and whose codes drive the timings."""

    main: str | None
    coded: dict[str, int]  # replies coded, per coder

    def role(self, coder: str) -> Role:
        if self.main is None:
            return "first"
        return "main" if coder == self.main else "second"


def coders(store: Store) -> Coders:
    counts = Counter(who for _, _, _, who, _ in store.code_rows())
    return Coders(store.meta(MAIN_CODER), dict(sorted(counts.items())))


@dataclass(frozen=True)
class MainCoderChange:
    previous: str | None
    main: str
    coded: int  # replies the new main coder has coded


def set_main_coder(store: Store, name: str) -> MainCoderChange:
    """Make ``name``'s codes drive the timings. Refused for a name with no codes, so that a
    misspelt name cannot silently turn every manual code back into the automatic one."""
    name = check_coder(name)
    found = coders(store)
    if name not in found.coded:
        known = ", ".join(f"{who} ({n})" for who, n in found.coded.items()) or "none yet"
        raise MysteryError(
            f"{name!r} has coded no reply in {store.path} (coders and their codes: {known}); "
            f"check the spelling, or code first with 'mystery code STUDY --coder {name}'")
    store.set_meta({MAIN_CODER: name})
    return MainCoderChange(found.main, name, found.coded[name])
