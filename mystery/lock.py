"""One runner per study: an exclusive lock file beside the store (``<db>.lock``).

Why: two runners on one store would both see a probe due and both post it (rule 3), and both
advance one cursor. SQLite's own locking keeps each transaction whole but not the run.

Why ``fcntl.flock`` and not "the file exists": the kernel drops the lock the moment its process
dies, however it dies (SIGKILL, power cut, a crashed laptop), so a lock can never go stale while
its holder is gone. The JSON body (pid, host, since when) is only there to tell the user *who*
holds it. A body left behind by a dead runner is simply taken over, and reported. On a file
system without ``flock`` (some network mounts) the body is judged instead: a live pid on this
host holds it; a dead one, or a body of our own, does not.

The file is never deleted (deleting a lock file races with a runner that has just opened it); on
release its body is emptied.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from mystery.clock import iso
from mystery.errors import StoreLockedError


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock, from its body."""

    pid: int
    host: str
    started: str

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, since {self.started}"

    def alive(self) -> bool:
        """Whether the holder runs on this host (unknowable for another host: assume so)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # someone else's live process
        return True


def lock_path(db: str | Path) -> Path:
    db = Path(db)
    return db.with_name(db.name + ".lock")


def _read(fd: int) -> Holder | None:
    try:
        raw = os.pread(fd, 4096, 0)
        body = json.loads(raw) if raw.strip() else None
        if isinstance(body, dict):
            return Holder(int(body["pid"]), str(body["host"]), str(body["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


class StudyLock:
    """``with StudyLock(lock_path(db)) as lock:`` holds the study for this process.

    ``taken_over`` names the dead runner whose lock this one took over, if any.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.taken_over: Holder | None = None
        self._fd: int | None = None

    def acquire(self) -> StudyLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            previous = _read(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise self._refusal(previous) from None
                # No flock here (ENOLCK, EOPNOTSUPP...): judge the body instead.
                if previous is not None and previous.pid != os.getpid() and previous.alive():
                    raise self._refusal(previous) from None
            previous = _read(fd)  # as it was when we got the lock
            self._write(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if previous is not None and previous.pid != os.getpid():
            self.taken_over = previous
        return self

    def _refusal(self, holder: Holder | None) -> StoreLockedError:
        who = holder.describe() if holder else "a runner that is just starting"
        return StoreLockedError(
            f"another 'mystery run' is using this study's store ({who}; lock file "
            f"{self.path}). Only one runner may collect a study at a time: wait for it to "
            "finish, or stop it (it resumes safely) and run again"
        )

    @staticmethod
    def _write(fd: int) -> None:
        body = json.dumps({
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": iso(datetime.now(UTC)),
        })
        os.ftruncate(fd, 0)
        os.pwrite(fd, body.encode(), 0)
        os.fsync(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> StudyLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
