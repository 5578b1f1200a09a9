"""From a study's store to timings (``results/<study>/timings.csv``) and ``study.json``.

The export is the only way collected data leaves the store for analysis, and it carries only
timings (no reply text, no agent name, no credential; the researcher account only for a team
study, whose tables are cut by it), so ``results/`` can be committed and published as is.
Why the timings are computed here and not by the store: the store keeps what was sent and
answered; which reply acknowledges and which resolves is coding
(:func:`mystery.coding.rules.probe_times`), and the seam is where the two meet.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from mystery.coding.rules import ProbeTimes, probe_times
from mystery.errors import StoreError
from mystery.timings import schema as timings
from mystery.timings.schema import TimingRow
from mystery.timings.studyinfo import StudyInfo
from mystery.words import Outcome

if TYPE_CHECKING:
    import polars as pl

    from mystery.store.rows import ReplyRow
    from mystery.store.store import Store
    from mystery.study.load import LoadedStudy


def load_timings(loaded: LoadedStudy, db: str | Path | None = None) -> pl.DataFrame:
    """The study's timings from its store (``db``, default: beside the study file)."""
    from mystery.store.store import Store

    path = Path(db) if db is not None else loaded.default_db
    with Store.open(path, create=False) as store:
        owner = store.meta("study")
        if owner is not None and owner != loaded.study.name:
            raise StoreError(
                f"{path} belongs to study {owner!r}, not {loaded.study.name!r}; pass the "
                "store of this study with --db"
            )
        rows = timing_rows(store)
    names = {row["study"] for row in rows}
    if names - {loaded.study.name}:
        raise StoreError(
            f"{path} holds study {', '.join(sorted(names))}, not {loaded.study.name}; "
            "pass the store of this study with --db"
        )
    return timings.frame(rows)


def timing_rows(store: Store) -> list[TimingRow]:
    """One row per settled probe of ``store`` in the timings schema. Probes not yet settled
    are left out: their outcome is not known yet."""
    brands: dict[str, dict[str, str]] = json.loads(store.required_meta("brands"))
    cutoff = store.cutoff()
    codes = store.codes()
    replies: dict[str, list[ReplyRow]] = {}
    for reply in store.replies():
        replies.setdefault(reply.probe_id, []).append(reply)
    study, series = store.required_meta("study"), store.required_meta("series")
    year = int(store.required_meta("year"))
    gave_up = store.gave_up()
    rows: list[TimingRow] = []
    settled = store.probes(state="settled")
    # A team study (several accounts on a channel) names each probe's account; any other keeps
    # the thirteen columns it always had.
    accounts: dict[str, set[str]] = {}
    for probe in store.probes():
        accounts.setdefault(probe.channel, set()).add(probe.account)
    team = any(len(names) > 1 for names in accounts.values())
    for probe in settled:
        censor = cutoff
        status: Outcome
        if probe.outcome == "excluded" or probe.sent_at is None:
            # Never sent, or sent but its replies cannot be vouched for (see ``flags``):
            # no times, so no figure can pick up half-known ones.
            times, status = ProbeTimes(None, None), "excluded"
        else:
            if probe.id in gave_up:  # the researcher stopped waiting (``mystery log``):
                # what was not seen by then is censored there, not at the cutoff
                censor = max(timedelta(0), min(cutoff, gave_up[probe.id] - probe.sent_at))
            times = probe_times(probe.sent_at, replies.get(probe.id, []), codes, censor)
            status = "answered" if times.ack is not None else "unanswered"
        rows.append(TimingRow(
            study=study,
            series=series,
            year=year,
            brand=probe.brand,
            sector=brands.get(probe.brand, {}).get("sector", ""),
            country=brands.get(probe.brand, {}).get("country", ""),
            channel=probe.channel,
            question=probe.question,
            sent_at=probe.sent_at,
            ack_seconds=times.ack,
            resolution_seconds=times.resolution,
            status=status,
            cutoff_seconds=censor.total_seconds(),
            account=probe.account if team else None,
        ))
    return rows


def write_export(df: pl.DataFrame, info: StudyInfo, folder: Path) -> list[Path]:
    """Write timings.csv and study.json into ``folder``; return both paths."""
    return [timings.write_csv(df, folder / "timings.csv"), info.write(folder)]
