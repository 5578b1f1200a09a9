"""Checks of a study that span sections, which a single field validator cannot see.

:func:`~mystery.study.load.load_study` runs them once every field is valid on its own: brands
reachable on the study's channels, handles unique and well formed, questions that X would
refuse or that mention a second account, a schedule that fits its dates, and, last, whether the
plan can hold every brand's probes. Each finding is a :class:`~mystery.errors.Problem` with its
key path (or brands CSV row), so every problem is reported at once.

X's own rules (usernames, the weighted length of a post) live here too: only these checks
apply them.
"""

from __future__ import annotations

import re
from datetime import timedelta

from mystery.durations import format_duration
from mystery.errors import Problem
from mystery.study.model import Study
from mystery.study.plan import schedule_problems
from mystery.words import AUTOMATED_CHANNELS

X_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
X_MAX_WEIGHT = 280


def x_username_problem(handle: str, max_length: int = 15) -> str | None:
    """Why ``handle`` cannot be an X username (``[A-Za-z0-9_]{1,15}``), with the fix; or None.

    Checked when the study is loaded because X would otherwise refuse (or silently mis-address)
    the probe days into the study."""
    if re.fullmatch(rf"[A-Za-z0-9_]{{1,{max_length}}}", handle):
        return None
    url = re.match(r"(?:https?://)?(?:www\.)?(?:x|twitter)\.com/([A-Za-z0-9_]+)", handle)
    if url:
        return f"{handle!r} is a link; write the username alone, e.g. {url.group(1)!r}"
    bad = sorted({ch for ch in handle if not re.fullmatch(r"[A-Za-z0-9_]", ch)})
    if bad:
        shown = ", ".join("a space" if ch == " " else repr(ch) for ch in bad)
        return (
            f"{handle!r} is not an X username: it contains {shown}; X usernames use only "
            "letters A-Z, digits and '_' (copy it from the profile's x.com/<username> link)"
        )
    return (
        f"{handle!r} has {len(handle)} characters; X usernames have at most {max_length} "
        "(copy it from the profile's x.com/<username> link)"
    )


def x_weighted_length(text: str) -> int:
    """Length as X counts it: most Latin-script characters 1, CJK, emoji and the rest 2.

    The ranges are twitter-text's (config v3); emoji sequences are over-counted slightly,
    which errs on the side of a question that fits."""
    total = 0
    for ch in text:
        code = ord(ch)
        light = (code <= 4351 or 8192 <= code <= 8205 or 8208 <= code <= 8223
                 or 8242 <= code <= 8247 or 0xFE00 <= code <= 0xFE0F)
        total += 1 if light else 2
    return total


def _x_problems(study: Study, file: str, rows: dict[int, str]) -> list[Problem]:
    """Handles X would refuse, a handle two brands share, questions too long to post."""
    problems: list[Problem] = []
    config = study.channels["x"]
    # The sandbox takes researcher accounts of up to 50 characters (sandbox/spec.py): the demo
    # study's is longer than X allows. Brands' handles follow X's rules everywhere.
    limit = 50 if config.is_sandbox else 15
    for i, account in enumerate(config.account_names):
        key = "channels.x.account" if config.accounts is None else f"channels.x.accounts[{i}]"
        if why := x_username_problem(account, limit):
            problems.append(Problem(file, key, why))
    owners: dict[str, str] = {}
    for i, brand in enumerate(study.brands):
        where = rows.get(i, f"brands[{i}]")
        handles = [(f"{where}.handles.x", brand.handles["x"])] if "x" in brand.handles else []
        handles += [(f"{where}.aliases.x[{j}]", alias)
                    for j, alias in enumerate(brand.aliases.get("x", []))]
        for path, handle in handles:
            if why := x_username_problem(handle):
                problems.append(Problem(file, path, why))
                continue
            owner = owners.setdefault(handle.casefold(), brand.name)
            if owner != brand.name:
                problems.append(Problem(
                    file, path, f"@{handle} is also the account of brand {owner!r}; give each "
                    "brand its own handles (replies from a shared account cannot be told apart)",
                ))
    for i, question in enumerate(study.questions):
        posted = [(x_weighted_length(f"@{b.handles['x']} {question.render(b.name)}"), b.name)
                  for b in study.brands if "x" in b.handles]
        if posted and max(posted)[0] > X_MAX_WEIGHT:
            length, name = max(posted)
            problems.append(Problem(
                file, f"questions[{i}].text", f"is {length} characters as posted to {name!r} "
                f"(with '@handle ' in front), but X allows {X_MAX_WEIGHT}; shorten it",
            ))
    return problems


# "@name", "@user@domain", "@brand.bsky.social", "@{brand}"; not the "@" of an email address.
_MENTION = re.compile(r"(?<![\w@])@(?:\{brand\}|\w(?:[\w.-]*\w)?(?:@\w(?:[\w.-]*\w)?)?)")


def _mention_problems(study: Study, file: str) -> list[Problem]:
    """Exactly one mention per probe, the brand's, which ``Outgoing.compose`` puts in front.

    A question that mentions anyone itself makes a post with two mentions (or the brand's
    twice): read as spam on X and Mastodon, auto-reported by some instances' anti-spam tooling,
    and a mention of a third account drags it into the conversation (research/platforms.md §7).
    """
    social = [c for c in ("x", "mastodon", "bluesky") if c in study.channels]
    if not social:
        return []
    problems: list[Problem] = []
    for i, question in enumerate(study.questions):
        found = _MENTION.search(question.text)
        if found is None:
            continue
        fix = ("write {brand} without '@'" if found.group() == "@{brand}"
               else f"remove {found.group()!r} (write {{brand}} to name the brand)")
        problems.append(Problem(
            file, f"questions[{i}].text",
            f"contains the mention {found.group()!r}, but a probe on {', '.join(social)} may "
            "mention only the brand it asks, and mystery adds that mention itself "
            f"('@handle ' in front); a second mention reads as spam: {fix}",
        ))
    return problems


def cross_checks(study: Study, file: str, rows: dict[int, str]) -> list[Problem]:
    """Checks that span sections, which a single field validator cannot see."""
    problems: list[Problem] = []
    if not study.brands:
        problems.append(Problem(file, "brands", "no brands; add [[brands]] or brands_csv"))
    seen: dict[str, int] = {}
    for i, brand in enumerate(study.brands):
        where = rows.get(i, f"brands[{i}]")
        key = brand.name.casefold()
        if key in seen:
            problems.append(
                Problem(file, where, f"duplicate brand {brand.name!r}; give each brand once")
            )
        seen[key] = i
        # A brand is asked on the automated channels it has a handle on (a brand may be on X
        # only); it must be reachable on at least one channel of the study.
        automated = [c for c in study.channels if c in AUTOMATED_CHANNELS]
        manual = [c for c in study.channels if c not in AUTOMATED_CHANNELS]
        if automated and not manual and not any(c in brand.handles for c in automated):
            problems.append(
                Problem(
                    file, f"{where}.handles",
                    f"brand {brand.name!r} has no handle on any of the study's channels "
                    f"({', '.join(automated)}); add one, e.g. handles = {{ {automated[0]} = "
                    '"BrandHandle" }',
                )
            )
        for channel in brand.handles:
            if channel not in study.channels:
                problems.append(
                    Problem(
                        file, f"{where}.handles.{channel}",
                        f"channel {channel!r} is not configured; add [channels.{channel}] "
                        "or remove the handle",
                    )
                )
        if brand.profile is not None and brand.profile not in study.sandbox.profiles:
            known = ", ".join(sorted(study.sandbox.profiles)) or "none defined"
            problems.append(
                Problem(
                    file, f"{where}.profile",
                    f"unknown profile {brand.profile!r}; define [sandbox.profiles."
                    f"{brand.profile}] (known: {known})",
                )
            )
    if study.sandbox_channels:
        for i, brand in enumerate(study.brands):
            if brand.profile is None:
                problems.append(
                    Problem(
                        file, f"{rows.get(i, f'brands[{i}]')}.profile",
                        f"brand {brand.name!r} has no profile but the study runs in the "
                        "sandbox, which needs one to simulate its answers",
                    )
                )
                break
    if "x" in study.channels:
        problems.extend(_x_problems(study, file, rows))
    ids = [q.id for q in study.questions]
    for i, qid in enumerate(ids):
        if ids.index(qid) != i:
            problems.append(
                Problem(file, f"questions[{i}].id", f"duplicate question id {qid!r}")
            )
    if "x" in study.channels:
        for i, q in enumerate(study.questions):
            if re.search(r"https?://|www\.", q.text, re.IGNORECASE):
                problems.append(
                    Problem(
                        file, f"questions[{i}].text",
                        "contains a URL: on X a post with a URL costs 13x more and reads "
                        "as spam; remove it",
                    )
                )
    problems.extend(_mention_problems(study, file))
    schedule = study.schedule
    if schedule.start.year != study.year and schedule.end.year != study.year:
        problems.append(
            Problem(
                file, "year",
                f"year {study.year} disagrees with the schedule ({schedule.start} to "
                f"{schedule.end}); correct one of them",
            )
        )
    days = {(schedule.start + timedelta(d)).weekday()
            for d in range(min(7, (schedule.end - schedule.start).days + 1))}
    if not any(days & w.weekdays for w in schedule.windows):
        problems.append(
            Problem(
                file, "schedule.windows",
                f"no send window falls on any day from {schedule.start} to {schedule.end}; "
                "widen the dates or the windows' days",
            )
        )
    span = timedelta(days=(schedule.end - schedule.start).days + 1)
    needed = schedule.min_gap * (schedule.probes_per_brand - 1)
    if needed >= span:
        problems.append(
            Problem(
                file, "schedule.min_gap",
                f"{schedule.probes_per_brand} probes per brand "
                f"{format_duration(schedule.min_gap.total_seconds())} apart need "
                f"more than the {span.days} day(s) from start to end; lengthen the schedule, "
                "shorten min_gap or lower probes_per_brand",
            )
        )
    for name, config in study.channels.items():
        if name == "email" and config.mode == "manual":
            problems.append(
                Problem(file, "channels.email.mode",
                        "email has no manual mode: the runner must send each message itself to "
                        "give it the Message-ID and reply token that replies are matched by; "
                        'use mode = "auto" or "confirm"')
            )
        for key, value in (("read_dms", config.read_dms), ("budget_usd", config.budget_usd)):
            if name != "x" and value:
                problems.append(
                    Problem(file, f"channels.{name}.{key}",
                            f"{key} applies to X only (it is about X's paid API); remove it "
                            f"from [channels.{name}]")
                )
        if name in AUTOMATED_CHANNELS and config.poll_every >= study.cutoff:
            problems.append(
                Problem(
                    file, f"channels.{name}.poll_every",
                    f"polls every {format_duration(config.poll_every.total_seconds())} but the "
                    f"cutoff is {format_duration(study.cutoff.total_seconds())}; "
                    "poll more often than the cutoff",
                )
            )
    if not problems:
        # Last, on an otherwise sound study: can the schedule hold every brand's probes? (The
        # span check above catches the obvious cases; this one knows the windows and DST.)
        problems.extend(schedule_problems(study, file))
    return problems
