"""What the last ``mystery publish`` of a checkout wrote, and from what: the publish memo.

A publish recomputes every table from a million timings in a few seconds. When nothing it
reads has changed since the last publish of the same checkout, and nothing it wrote has been
touched, that work would write the very bytes already there. So each publish (and each check
that finds everything current) leaves a memo: one key for everything that decides its output
(the bytes of every input file, the options, the bytes of mystery's own code, the releases of
Python and the libraries that compute or draw, and the machine's code paths), and the hash of
every file it wrote or found current. The next publish or check with the same key, whose files
all still have their hashes, does nothing and says so: it costs hashing the inputs, less than
reading them.

Why the memo is safe: any difference falls back to the full publish. A changed input, option,
code or library changes the key; an edited, deleted or replaced output changes a hash; an
unreadable memo is no memo. The key is taken before the publish and again after it, and the
memo is kept only when both agree, so an input edited while a publish ran is never recorded
as the source of outputs computed from its other version.

Why ``publish --check`` uses it too, and what it still proves: the check asks whether the
committed tables are what the code computes from the committed timings, byte for byte, on the
machine that runs it. A memo with today's key says exactly that: this code, with these
releases, on this machine, computed these bytes from these inputs, and the files still have
them. So the key also holds what the machine decides of the computation's path: its
architecture, the SIMD code paths numpy dispatches to (``NPY_DISABLE_CPU_FEATURES`` switches
them) and polars' thread setting; a check under other code paths recomputes. A fresh clone,
a CI runner, has no memo and recomputes every table; ``--recompute`` does the same anywhere.
What the memo cannot prove is that a recomputation today would give the same bytes again (a
non-deterministic table): the tests prove that, and CI's fresh clone recomputes.

Why the memo lives in the user's cache folder (``platformdirs``; ``$MYSTERY_CACHE_DIR``
overrides it), one file per checkout named by the hash of its path, and not in ``results/``:
``results/`` holds results only. A folder of local state there is one more "results folder"
to every script that walks them, and one more untracked file in every repository that
publishes. A fresh clone, or a CI runner, has no memo.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import sys
import tempfile
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from mystery.analysis.manifest import file_hash

CACHE_DIR_ENV = "MYSTERY_CACHE_DIR"
#: The libraries whose release can change a table's or a chart's bytes.
_LIBRARIES = ("polars", "numpy", "matplotlib", "scipy", "tzdata", "holidays")
_ABOUT = ("What the last 'mystery publish' of this checkout (root) wrote, and from what. "
          "Delete it at any time: the next publish recomputes everything.")


def _digest(path: Path) -> str | None:
    """A file's sha256 as the charts' manifest takes it; None when there is no file to read
    (a folder where a file was counts as a change, never as a crash)."""
    try:
        return file_hash(path)
    except OSError:
        return None


def _inputs(root: Path) -> list[Path]:
    """Every file :func:`mystery.publish.gather` may read. All of ``studies/*.csv`` (gather
    reads only the published ones; hashing the brand lists too costs little and decides
    nothing wrongly)."""
    return [*sorted((root / "studies").glob("*.csv")),
            *sorted((root / "results").glob("*/timings.csv")),
            *sorted((root / "results").glob("*/study.json"))]


@cache
def _code() -> str:
    """The hash of every file of the installed mystery package: any edit of the code, a
    table's format or the house style makes every memo stale."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0")
            digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


def _releases() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version}
    for name in _LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = ""
    return found


def _machine() -> dict[str, Any]:
    """What this machine decides of a computation's path: its architecture, the SIMD features
    numpy dispatches to here, and polars' thread setting.

    Why numpy's private ``__cpu_features__``: no public call lists the features enabled in this
    process cheaply (``numpy.lib.introspect.opt_func_info`` walks every function's targets);
    where the module has moved, the environment variables that switch the features stand in."""
    machine: dict[str, Any] = {"arch": platform.machine(),
                               "polars_threads": os.environ.get("POLARS_MAX_THREADS", "")}
    try:
        umath = importlib.import_module("numpy._core._multiarray_umath")  # untyped, private
    except ImportError:
        umath = None
    enabled = getattr(umath, "__cpu_features__", None)
    dispatch = getattr(umath, "__cpu_dispatch__", None)
    if isinstance(enabled, dict) and dispatch is not None:
        machine["numpy_dispatch"] = sorted(f for f in dispatch if enabled.get(f))
    else:
        machine["numpy_env"] = [os.environ.get(name, "") for name in
                                ("NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES")]
    return machine


def key(root: str | Path, options: Mapping[str, Any]) -> str:
    """The sha256 of everything that decides what a publish of ``root`` writes."""
    base = Path(root)
    digest = hashlib.sha256(json.dumps(
        {"options": options, "code": _code(), "releases": _releases(), "machine": _machine()},
        sort_keys=True, default=str).encode())
    for path in _inputs(base):
        digest.update(path.relative_to(base).as_posix().encode() + b"\0")
        digest.update(f"{_digest(path)}\0".encode())
    return digest.hexdigest()


def cache_dir() -> Path:
    """The user cache folder; ``$MYSTERY_CACHE_DIR`` overrides it (tests, portable installs)."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override)
    from platformdirs import user_cache_path

    return user_cache_path("mystery", appauthor=False)


def path(root: str | Path) -> Path:
    """The memo of the checkout at ``root``: one file per checkout, named by its path."""
    where = str(Path(root).resolve()).encode("utf-8", "surrogateescape")
    return cache_dir() / "publish" / f"{hashlib.sha256(where).hexdigest()[:32]}.json"


def recall(root: str | Path, inputs: str) -> list[Path] | None:
    """The files (relative to ``root``) of the last publish, when it had the key ``inputs``
    and every one of them still has the hash it had then; otherwise None."""
    base = Path(root)
    try:
        memo = json.loads(path(base).read_bytes())
        if memo["inputs"] != inputs:
            return None
        files = {str(rel): str(digest) for rel, digest in memo["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not files or any(_digest(base / rel) != digest for rel, digest in files.items()):
        return None
    return [Path(rel) for rel in sorted(files)]


def remember(root: str | Path, inputs: str, files: Iterable[Path]) -> None:
    """Record that a publish with the key ``inputs`` left ``files`` (relative to ``root``)
    as they are now. Written to a temporary file and renamed, so a memo is whole or absent.
    A memo that cannot be written is no error: the publish it describes has succeeded, and
    the next one recomputes."""
    base = Path(root)
    target = path(base)
    hashes = {rel.as_posix(): _digest(base / rel) for rel in sorted(files)}
    if None in hashes.values():
        return
    doc = {"about": _ABOUT, "root": str(base.resolve()), "inputs": inputs, "files": hashes}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(name, target)
    except OSError:
        Path(name).unlink(missing_ok=True)

