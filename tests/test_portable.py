"""Windows and macOS: no POSIX-only module on any command path.

Run in a fresh interpreter where the POSIX-only modules cannot be imported (as on Windows):
every module of the package imports, every command's ``--help`` answers, and the study lock is
taken and released (judged by its body, the way it must be without ``flock``).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

POSIX_ONLY = ("fcntl", "termios", "pty", "tty", "resource", "grp")

SCRIPT = textwrap.dedent("""
    import importlib, pkgutil, sys
    for name in {posix_only!r}:
        sys.modules[name] = None  # import raises ImportError, as on Windows
    import mystery
    failed = []
    for module in pkgutil.walk_packages(mystery.__path__, "mystery."):
        if module.name == "mystery.__main__":
            continue  # runs the CLI when imported: the --help calls below stand for it
        try:
            importlib.import_module(module.name)
        except ImportError as exc:
            failed.append(f"{{module.name}}: {{exc}}")
    import typer
    from typer.testing import CliRunner
    from mystery.cli import app
    root = typer.main.get_command(app)
    commands = []
    for name, command in root.commands.items():
        commands.append([name])
        commands += [[name, sub] for sub in getattr(command, "commands", {{}})]
    for words in commands:
        result = CliRunner().invoke(app, [*words, "--help"])
        if result.exit_code != 0:
            failed.append(f"mystery {{' '.join(words)}} --help: {{result.output!r}}")
    from mystery.store.lock import StudyLock
    with StudyLock(sys.argv[1]) as lock:
        assert lock.taken_over is None
    print("\\n".join(failed) or f"ok {{len(commands)}}")
""").format(posix_only=POSIX_ONLY)


def test_every_module_and_command_works_without_posix_only_modules(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "s.db.lock")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ok "), result.stdout
    assert int(lines[0].split()[1]) >= 10  # every command was asked, not none
