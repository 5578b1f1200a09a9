"""``mystery auth``: set, list, locate and remove the credentials a channel needs.

Why a command rather than "edit this file": a secret typed at a hidden prompt never lands in
shell history, and the file it goes to is created owner-only (0600) in one atomic step. The
values are never printed back, not even masked in part: ``auth list`` says only where each key
comes from, which is what a confused user needs ("is my environment overriding the file?").
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from mystery.cli.console import err_console, friendly_errors, out_console
from mystery.cli.options import FormatOption, write_csv, write_json
from mystery.errors import MysteryError

if TYPE_CHECKING:  # imported in each command: ~11 ms (json, logging, tempfile) that
    from mystery import credentials  # 'mystery --help' does not need to pay

auth_app = typer.Typer(
    name="auth",
    help="Set, list, locate and remove the credentials each channel needs (values are never "
    "printed).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class AuthChannel(StrEnum):
    """The channels that need credentials; hand-logged channels need none."""

    x = "x"
    mastodon = "mastodon"
    bluesky = "bluesky"
    email = "email"


ChannelArgument = Annotated[
    AuthChannel,
    typer.Argument(help="The channel: x, mastodon, bluesky or email.", case_sensitive=False,
                   metavar="CHANNEL", show_default=False),
]
AccountOption = Annotated[
    str | None,
    typer.Option("--account", help="The researcher account these keys belong to, for a "
                 "channel with several accounts = [...] (keys named KEY__ACCOUNT); by default "
                 "the channel's keys shared by a one-account study.", show_default=False),
]
KeyOption = Annotated[
    list[str] | None,
    typer.Option("--key", help="Only this key, e.g. X_BEARER_TOKEN (repeat for more); by "
                 "default all of the channel's keys.", metavar="KEY", show_default=False),
]

_INTRO = {
    "x": "X takes either an OAuth 2.0 user access token (X_BEARER_TOKEN) or the four OAuth 1.0a "
    "keys of your app and account (developer console: Keys and tokens).",
    "mastodon": "Mastodon takes an access token with read and write scopes (Preferences > "
    "Development > New application).",
    "bluesky": "Bluesky takes an app password (Settings > Privacy and security > App "
    "passwords), never your account password.",
    "email": "Email takes the password (or app password) of the mailbox that sends the probes.",
}


def _interactive() -> bool:
    """A person at a terminal (prompt, hidden) rather than a pipe (read stdin): a hook for tests."""
    return sys.stdin.isatty()


def _chosen_keys(channel: str, keys: list[str] | None) -> list[str]:
    from mystery import credentials

    known = credentials.channel_keys(channel)
    if not keys:
        return list(known)
    chosen = [k.strip().upper().removeprefix(credentials.ENV_PREFIX) for k in keys]
    unknown = [k for k in chosen if k not in known]
    if unknown:
        raise MysteryError(
            f"{', '.join(unknown)} is not a {channel} key; {channel} keys are {', '.join(known)}"
        )
    return list(dict.fromkeys(chosen))


def _check(key: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise MysteryError(f"{key} is empty; paste the value, or press Ctrl-C to stop")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise MysteryError(
            f"the value given for {key} contains spaces or control characters; paste the key "
            "alone, on one line"
        )
    return value


def _prompt(key: str, *, if_empty: str = "") -> str:
    """A hidden prompt; ``if_empty`` says what an empty answer means (none: one is required)."""
    suffix = f" (leave empty {if_empty})" if if_empty else ""
    value: str = typer.prompt(f"{key}{suffix}", default="" if if_empty else None,
                              hide_input=True, show_default=False, err=True)
    return value.strip()


def _ask(channel: str, keys: list[str], explicit: bool) -> dict[str, str]:
    """Prompt with hidden input; for X without --key, an empty bearer token means OAuth 1.0a."""
    from mystery import credentials

    err_console().print(_INTRO[channel] + " Input is hidden.", markup=False)
    if channel == "x" and not explicit:
        bearer = _prompt(credentials.X_BEARER, if_empty="to give the OAuth 1.0a keys instead")
        if bearer:
            return {credentials.X_BEARER: _check(credentials.X_BEARER, bearer)}
        keys = list(credentials.X_OAUTH1)
    return {key: _check(key, _prompt(key)) for key in keys}


def _read_stdin(channel: str, keys: list[str], explicit: bool) -> dict[str, str]:
    """One value per line, in the order of ``keys``; X without --key takes 1 or 4 lines."""
    from mystery import credentials

    lines = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
    if channel == "x" and not explicit:
        if len(lines) == 1:
            keys = [credentials.X_BEARER]
        elif len(lines) == len(credentials.X_OAUTH1):
            keys = list(credentials.X_OAUTH1)
        else:
            raise MysteryError(
                f"expected on stdin 1 line ({credentials.X_BEARER}) or 4 lines "
                f"({', '.join(credentials.X_OAUTH1)}, in that order), got {len(lines)}"
            )
    elif len(lines) != len(keys):
        raise MysteryError(
            f"expected on stdin {len(keys)} line(s) ({', '.join(keys)}, in that order), "
            f"got {len(lines)}"
        )
    return {key: _check(key, value) for key, value in zip(keys, lines, strict=True)}


@friendly_errors
def set_(
    channel: ChannelArgument,
    key: KeyOption = None,
    use_keyring: Annotated[
        bool, typer.Option("--keyring", help="Store in the system keyring instead of the "
                           "owner-only keys file.")
    ] = False,
    account: AccountOption = None,
) -> None:
    """Ask for a channel's keys (hidden input, or one per line on stdin) and store them."""
    from mystery import credentials

    name = channel.value
    keys = _chosen_keys(name, key)
    values = _ask(name, keys, bool(key)) if _interactive() else _read_stdin(name, keys, bool(key))
    values = {credentials.account_key(k, _account(account)): v for k, v in values.items()}
    where = credentials.store_secrets(values, use_keyring=use_keyring)
    err_console().print(f"Saved {', '.join(values)} in {where}.", markup=False)
    shadowed = [credentials.env_name(k) for k in values if _source(k) == "environment"]
    if shadowed:
        err_console().print(
            f"Note: {', '.join(shadowed)} is set in the environment and wins over what was "
            "just saved; unset it to use the saved value.", markup=False,
        )


def _account(account: str | None) -> str | None:
    """``--account`` as a name, refused when it cannot name keys."""
    from mystery import credentials

    if account is None:
        return None
    name = account.strip().lstrip("@")
    if not credentials.account_suffix(name):
        raise MysteryError(f"--account {account!r} has no letter or digit; give the account's "
                           "name as the study file lists it")
    return name


def _source(key: str) -> str | None:
    from mystery import credentials

    found = credentials.lookup(key)
    return found.source if found else None


def _status(channel: str, found: dict[str, credentials.Found | None]) -> str:
    from mystery import credentials

    for keys in credentials.CHANNEL_KEYS[channel]:
        if all(found[k] for k in keys):
            return "ready (" + ", ".join(keys) + ")" if len(keys) == 1 else "ready (OAuth 1.0a)"
    partial = [keys for keys in credentials.CHANNEL_KEYS[channel] if any(found[k] for k in keys)]
    if partial:
        missing = [k for k in partial[0] if not found[k]]
        return "incomplete: missing " + ", ".join(missing)
    return "not set"


@friendly_errors
def list_(
    channel: Annotated[
        AuthChannel | None,
        typer.Argument(help="Only this channel; by default every channel.", case_sensitive=False,
                       metavar="[CHANNEL]", show_default=False),
    ] = None,
    output: FormatOption = "table",
    account: AccountOption = None,
) -> None:
    """Show which keys are set and where each comes from; never their values."""
    from rich.markup import escape  # lazily: rich costs 'mystery --help' ~40 ms
    from rich.table import Table

    from mystery import credentials

    channels = [channel.value] if channel else list(credentials.CHANNEL_KEYS)
    who = _account(account)

    def keys_of(name: str) -> list[str]:
        return [credentials.account_key(k, who) for k in credentials.channel_keys(name)]

    if output != "table":  # for scripts: whether each key is set, and where; never a value
        rows = [(name, key, "yes" if hit else "no", hit.where if hit else "")
                for name in channels
                for key, hit in ((k, credentials.lookup(k)) for k in keys_of(name))]
        columns = ("channel", "key", "set", "from")
        if output == "csv":
            write_csv(columns, rows)
        else:
            write_json([dict(zip(columns, row, strict=True)) for row in rows])
        return
    table = Table(box=None, pad_edge=False, title_justify="left",
                  title="Credentials (first found wins: environment, keys file, keyring)")
    for column in ("channel", "key", "value", "from"):
        table.add_column(column)
    states: list[str] = []
    for name in channels:
        found = {k: credentials.lookup(credentials.account_key(k, who))
                 for k in credentials.channel_keys(name)}
        for key, hit in found.items():
            table.add_row(name, credentials.account_key(key, who), "********" if hit else "-",
                          escape(hit.where) if hit else "not set")  # a path may hold "["
        states.append(f"{name}{' as ' + who if who else ''}: {_status(name, found)}")
    out_console().print(table)
    for state in states:
        out_console().print(state, markup=False)


@friendly_errors
def path() -> None:
    """Print the keys file's path (it may not exist yet); $MYSTERY_CONFIG_DIR moves it."""
    from mystery import credentials

    out_console().print(str(credentials.keys_path()), markup=False, soft_wrap=True)


@friendly_errors
def remove(channel: ChannelArgument, key: KeyOption = None,
           account: AccountOption = None) -> None:
    """Delete a channel's keys from the keys file and the keyring."""
    from mystery import credentials

    name = channel.value
    keys = [credentials.account_key(k, _account(account)) for k in _chosen_keys(name, key)]
    removed = credentials.remove_secrets(keys)
    for found in removed:
        err_console().print(f"Removed {found.key} from {found.where}.", markup=False)
    if not removed:
        err_console().print(
            f"No {name} key was stored in {credentials.keys_path()} or the keyring.", markup=False
        )
    still = [credentials.env_name(k) for k in keys if credentials.lookup(k)]
    if still:
        err_console().print(
            f"Still set in the environment: {', '.join(still)}; unset it yourself.", markup=False
        )


auth_app.command("set")(set_)
auth_app.command("list")(list_)
auth_app.command()(path)
auth_app.command()(remove)


def register(app: typer.Typer) -> None:
    """Add the ``auth`` command group to the app."""
    app.add_typer(auth_app)
