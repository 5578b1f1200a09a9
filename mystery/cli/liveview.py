"""The live view of ``mystery run``: rich's own Progress (its bar, its elapsed time, its Live)
with the run's facts drawn under the bar.

The runner reports facts (:class:`mystery.collect.progress.Progress`); this module only draws them.
Two threads meet here, so the split is strict: the run's thread reads the store (at most ten times
a second, into an immutable :class:`_Frame`), and rich's refresh thread draws the latest frame
without touching the store (an SQLite connection belongs to the thread that opened it). The
refresh thread keeps drawing while a real run sleeps, so the real clock, the elapsed time and
every countdown keep moving when nothing else happens.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

from mystery.collect.progress import Event, Progress, Wait
from mystery.durations import format_duration, format_span
from mystery.store.store import Counts

READS_PER_SECOND = 10
READ_SHARE = 20
"""Wait at least this many times as long as the last read took before reading again (5 %)."""
"""How often the store is read for counts, and the display redrawn: fast enough to look live,
slow enough that a virtual run doing thousands of passes a second barely notices."""


@dataclass(frozen=True)
class _Frame:
    """The facts of one moment, read in the run's thread; ``taken`` (monotonic) lets a real
    clock move on between frames."""

    now: datetime
    zone: ZoneInfo
    virtual: bool
    total: Counts
    channels: Mapping[str, Counts]
    held: Mapping[str, int]
    stopped: tuple[str, ...]
    next_event: Event | None
    waits: tuple[Wait, ...]
    end: datetime | None  # when the study should be over (shown for real studies only)
    taken: float
    others: tuple[str, ...] = ()  # the team's other runners (a PostgreSQL store)

    def clock(self) -> datetime:
        """The study's clock as it reads now: a virtual clock stands still between frames
        (the runner moves it), the real one does not."""
        if self.virtual:
            return self.now
        return self.now + timedelta(seconds=time.monotonic() - self.taken)


def _read(progress: Progress) -> _Frame:
    return _Frame(
        now=progress.now, zone=ZoneInfo(progress.timezone), virtual=progress.virtual,
        total=progress.counts(), channels=progress.channel_counts(), held=dict(progress.held),
        stopped=progress.stopped_channels, next_event=progress.next_event,
        waits=progress.waits, end=None if progress.virtual else progress.expected_end(),
        taken=time.monotonic(), others=tuple(progress.other_runners()),
    )


def _in(delta: timedelta) -> str:
    return "now" if delta <= timedelta(0) else f"in {format_span(delta)}"


def _event_text(event: Event, now: datetime, zone: ZoneInfo) -> str:
    """One line a user can act on: "next send p0042 on x at Mon 14:05 Europe/London (in 3 min)",
    "next poll x in 3 min"."""
    when = _in(event.at - now)
    if event.kind == "send":
        local = event.at.astimezone(zone)
        return (f"next send {event.probe_id} on {event.channel} at {local:%a %H:%M} "
                f"{zone.key} ({when})")
    return {
        "resume": f"next: sending resumes on {event.channel} {when}",
        "poll": f"next poll {event.channel} {when}",
        "check": f"next: check an uncertain send on {event.channel}'s timeline {when}",
        "look": f"next: look for posts made by hand on {event.channel} {when}",
    }[event.kind]


def _counts_table(frame: _Frame) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("channel", "sent", "acknowledged", "resolved", "unanswered", "held",
                   "settled"):
        table.add_column(column, justify="left" if column == "channel" else "right")

    def row(name: str, c: Counts, held: int, style: str = "") -> None:
        table.add_row(name, str(c.sent), str(c.acknowledged), str(c.resolved),
                      str(c.unanswered), str(held), f"{c.settled}/{c.planned}", style=style)

    for name, c in frame.channels.items():
        label = f"{name} (stopped)" if name in frame.stopped else name
        row(label, c, frame.held.get(name, 0))
    row("all", frame.total, sum(frame.held.values()), style="bold")
    return table


def _details(frame: _Frame) -> Iterable[RenderableType]:
    now = frame.clock()
    local = now.astimezone(frame.zone)
    kind = "virtual, the sandbox's" if frame.virtual else "real"
    yield Text(f"study clock {local:%a %Y-%m-%d %H:%M:%S} {frame.zone.key} ({kind})")
    if frame.end is not None:
        end = frame.end.astimezone(frame.zone)
        left = frame.end - now
        eta = f"in {format_duration(left.total_seconds())}" if left > timedelta(0) else "now"
        yield Text(f"ETA {eta}: the plan's last send plus the cutoff, "
                   f"{end:%a %Y-%m-%d %H:%M} {frame.zone.key}")
    yield _counts_table(frame)
    for other in frame.others:
        yield Text(f"other runner: {other}", style="dim")
    if frame.next_event is not None:
        yield Text(_event_text(frame.next_event, now, frame.zone))
    for wait in frame.waits:
        if wait.until > now:
            yield Text(f"{wait.channel}: rate limited while {wait.doing}; waiting "
                       f"{format_span(wait.until - now)} more", style="yellow")


class _Board(RichProgress):
    """rich's Progress, with the latest frame's details under its bar (rich's documented way
    to add renderables to a progress display: override ``get_renderables``)."""

    frame: _Frame | None = None

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        frame = self.frame
        if frame is not None:
            yield Group(*_details(frame))


class LiveView:
    """What ``mystery run`` shows on a terminal while it runs.

    Starts with the first report, so a run that has nothing to do draws nothing; ``pause``
    and ``resume`` make room for a question; ``close`` leaves the last frame on the screen.
    The runner's final report is always read, however soon after the previous one, so the
    last frame shows the counts of the summary line that follows it.
    """

    def __init__(self, console: Console, title: str) -> None:
        self._board = _Board(
            TextColumn("{task.description}", markup=False, style="bold"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("settled ·"),
            TimeElapsedColumn(),
            TextColumn("elapsed"),
            console=console, refresh_per_second=READS_PER_SECOND, transient=False,
        )
        self._task = self._board.add_task(title, total=None)  # elapsed counts from here
        self._next_read = float("-inf")
        self._started = False

    def report(self, progress: Progress) -> None:
        """The runner's ``on_progress``."""
        start = time.monotonic()
        if not progress.final and start < self._next_read:
            return
        frame = _read(progress)
        # At most READS_PER_SECOND, and never more than 1/READ_SHARE of the run's time: the
        # counts of a 10,000-probe store take tens of milliseconds to read.
        self._next_read = start + max(1 / READS_PER_SECOND,
                                      READ_SHARE * (time.monotonic() - start))
        self._board.frame = frame
        self._board.update(self._task, total=frame.total.planned,
                           completed=frame.total.settled)
        if not self._started:
            self._board.start()
            self._started = True
        if progress.final:
            self._board.refresh()

    def pause(self) -> None:
        if self._started:
            self._board.stop()

    def resume(self) -> None:
        if self._started:
            self._board.start()

    def close(self) -> None:
        """Stop drawing; the last frame stays (rich draws it once more as it stops)."""
        if self._started:
            self._board.stop()
            self._started = False
