"""Everything that can go wrong in mystery, as one tree, so callers catch what they can handle.

::

    MysteryError                  a user-facing problem: the CLI prints it and exits 1
    ├── StudyError                the study file (or its brands CSV) is invalid: every problem
    ├── ImportFileError           an imported CSV (published figures, codes) has bad rows
    ├── StoreError                the store is missing, locked, damaged, read-only, on a full
    │   │                         disk, or of another study file
    │   └── StoreLockedError      another runner holds this study
    ├── ChannelError              a channel cannot go on
    │   ├── AuthError             401/402/403: a credential or the account needs fixing
    │   ├── RateLimited           429: wait until ``reset_at`` (raised to the runner, which waits)
    │   ├── TransientError        5xx, timeout, dropped connection: retry reads with backoff;
    │   │                         a post that failed so is *uncertain* and gets reconciled
    │   └── Rejected              the platform refused this one post (400, duplicate): not sent
    └── SandboxError              the sandbox could not start or answered nonsense

The library raises; the CLI turns each into one line on stderr and exit 1, in one place:
:func:`mystery.cli.console.friendly_errors`, around every command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class MysteryError(Exception):
    """A problem the user can fix; ``str(error)`` is the whole message, with the fix."""


@dataclass(frozen=True)
class Problem:
    """One problem in one input file: where (key path, line or row) and what to do."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        return f"{self.file}: {where}{self.message}"


class _ProblemsError(MysteryError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class StudyError(_ProblemsError):
    """The study file or its brands CSV is invalid; ``problems`` lists every one."""


class ImportFileError(_ProblemsError):
    """A CSV the user gave has bad rows; nothing from it was accepted."""


class StoreError(MysteryError):
    """The store cannot be used as asked."""


class StoreLockedError(StoreError):
    """Another runner holds the study's lock."""


class ChannelError(MysteryError):
    """A channel cannot go on; the runner stops that channel and keeps the others."""


class AuthError(ChannelError):
    """The platform refused our credentials or account (401, 402, 403)."""


class RateLimited(ChannelError):
    """The platform asked us to wait (429) until ``reset_at`` (UTC)."""

    def __init__(self, message: str, reset_at: datetime | None) -> None:
        super().__init__(message)
        self.reset_at = reset_at


class TransientError(ChannelError):
    """A passing fault; for a post, we do not know whether it went out."""


class Rejected(ChannelError):
    """The platform certainly did not post this probe (e.g. 400, duplicate content)."""


class SandboxError(MysteryError):
    """The sandbox could not be started or reached."""
