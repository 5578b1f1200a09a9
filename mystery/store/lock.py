"""One runner per study: an exclusive lock file beside the store (``<db>.lock``).

Why: two runners on one store would both see a probe due and both post it (rule 3), and both
advance one cursor. SQLite's own locking keeps each transaction whole but not the run.

Why an operating-system lock (``filelock``: ``flock`` on POSIX, ``LockFileEx`` on Windows) and
not "the file exists": the kernel drops the lock the moment its process dies, however it dies
(SIGKILL, power cut, a crashed laptop), so a lock can never go stale while its holder is gone.
``filelock`` rather than ``fcntl`` so that ``run`` and ``sent`` start on Windows too.

The JSON body (pid, host, since when) is only there to tell the user *who* holds it. It starts
at byte 1, because Windows locks byte 0 against every other process's reads; JSON ignores the
leading newline. A body left behind by a dead runner is simply taken over, and reported. On a
file system without OS locks (some network mounts) the body is judged instead: a live pid on
this host holds it; a dead one, or a body of our own, does not.

The file is never deleted (deleting a lock file races with a runner that has just opened it);
on release its body is emptied.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from mystery.clock import iso
from mystery.errors import StoreError, StoreLockedError
from mystery.store.address import PostgresAddress, StoreAddress

if TYPE_CHECKING:
    from filelock import FileLock

_BODY_AT = 1
"""Where the body starts: after the byte Windows locks (see the module docstring)."""

_NO_OS_LOCKS = frozenset({errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP})


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock, from its body."""

    pid: int
    host: str
    started: str

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, since {self.started}"

    def alive(self) -> bool:
        """Whether the holder runs on this host (unknowable for another host: assume so).

        Only asked where the file system has no OS locks; on Windows, where ``os.kill(pid, 0)``
        would terminate the process rather than probe it, assume alive (Windows always has
        ``LockFileEx``, so this is never the deciding check there)."""
        if self.host != socket.gethostname() or sys.platform == "win32":
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # someone else's live process
        return True


def study_lock(address: StoreAddress) -> AbstractContextManager[StudyLock | None]:
    """The lock that keeps a study to one runner: a file beside an SQLite store. A PostgreSQL
    store has none: its runners hold a lease per account instead (:mod:`mystery.store.leases`),
    taken once the store is open."""
    if isinstance(address, PostgresAddress):
        return nullcontext()
    return StudyLock(lock_path(address))


def lock_path(db: str | Path) -> Path:
    db = Path(db)
    return db.with_name(db.name + ".lock")


def read_holder(path: Path) -> Holder | None:
    """The body of a lock file, if it names a holder; ``None`` when empty, unreadable (a
    holder's locked byte on Windows) or not ours."""
    try:
        with open(path, "rb") as file:
            try:
                raw = file.read(4096)
            except OSError:  # Windows: byte 0 is locked by the holder; the body is past it
                file.seek(_BODY_AT)
                raw = file.read(4096)
        body = json.loads(raw) if raw.strip() else None
        if isinstance(body, dict):
            return Holder(int(body["pid"]), str(body["host"]), str(body["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _write_body(fd: int) -> None:
    body = json.dumps({
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": iso(datetime.now(UTC)),
    })
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"\n" + body.encode())
    os.fsync(fd)


def _os_lock(path: Path, on_acquired: Callable[[int], None]) -> FileLock:
    """The OS lock on ``path``, not yet taken; ``on_acquired`` gets its descriptor.

    ``preserve_lock_file``: never unlink on release (see the module docstring);
    ``thread_local=False``: one run is one holder, whichever thread releases it. Where the
    platform has no OS locks at all, filelock offers only its marker-file lock, which deletes
    its file to release: that is refused as ENOLCK, and the body is judged instead."""
    import filelock

    if filelock.FileLock is filelock.SoftFileLock:
        raise OSError(errno.ENOLCK, "no OS file locks on this platform")
    return filelock.FileLock(path, blocking=False, thread_local=False, preserve_lock_file=True,
                             fallback_to_soft=False, mode=0o600, on_acquired=on_acquired)


class StudyLock:
    """``with StudyLock(lock_path(db)) as lock:`` holds the study for this process.

    ``taken_over`` names the dead runner whose lock this one took over, if any.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.taken_over: Holder | None = None
        self._lock: FileLock | None = None
        self._fd: int | None = None  # the descriptor our body was written through

    def acquire(self) -> StudyLock:
        from filelock import Timeout

        previous = read_holder(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = _os_lock(self.path, self._on_acquired)
            lock.acquire()
        except Timeout:
            raise self._refusal(read_holder(self.path) or previous) from None
        except OSError as exc:
            if exc.errno not in _NO_OS_LOCKS:
                raise StoreError(
                    f"cannot create the study's lock file {self.path}: {exc.strerror}; the "
                    "store's folder must be writable while a study runs (or pass --db with a "
                    "store in a writable folder)"
                ) from None
            self._acquire_without_os_locks(previous)
        else:
            self._lock = lock
        if previous is not None and previous.pid != os.getpid():
            self.taken_over = previous
        return self

    def _on_acquired(self, fd: int) -> None:
        """Write our body through the lock's own descriptor (Windows refuses writes to the
        locked byte through any other), and keep it to empty the body on release."""
        _write_body(fd)
        self._fd = fd

    def _acquire_without_os_locks(self, previous: Holder | None) -> None:
        """No OS locks here: judge the body instead (see the module docstring)."""
        if previous is not None and previous.pid != os.getpid() and previous.alive():
            raise self._refusal(previous)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _write_body(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _refusal(self, holder: Holder | None) -> StoreLockedError:
        who = holder.describe() if holder else "a runner that is just starting"
        return StoreLockedError(
            f"another 'mystery run' is using this study's store ({who}; lock file "
            f"{self.path}). Only one runner may collect a study at a time: wait for it to "
            "finish, or stop it (it resumes safely) and run again"
        )

    def release(self) -> None:
        """Empty the body, then drop the lock (emptied first: a body with no lock behind it
        would be reported as a dead runner by the next one)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with suppress(OSError):
                os.ftruncate(fd, 0)
        if self._lock is not None:
            self._lock.release()  # closes the descriptor it lent us
            self._lock = None
        elif fd is not None:
            os.close(fd)

    def __enter__(self) -> StudyLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
