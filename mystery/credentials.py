"""Where credentials come from, where ``mystery auth`` keeps them, and how they stay out of logs.

Lookup order for a key such as ``X_BEARER_TOKEN`` (first found wins):

1. a command-line flag, for the commands that take one (``flag=`` below);
2. the environment variable ``MYSTERY_<KEY>`` (what CI uses, from its secret store);
3. ``keys.json`` in the user config dir (``typer.get_app_dir("mystery")``, or
   ``$MYSTERY_CONFIG_DIR``): a JSON object ``{KEY: value}``, owner-only (0600), written by
   ``mystery auth set``;
4. the system keyring (service ``mystery``, user ``<KEY>``): optional, skipped silently on a
   machine without a backend (headless CI runners usually have none).

**Several accounts on a channel** (a team study's ``accounts = [...]``): each account has its
own keys, named with the account's suffix, e.g. ``X_BEARER_TOKEN__SHOPPER_A`` for account
``shopper_a`` (environment ``MYSTERY_X_BEARER_TOKEN__SHOPPER_A``; ``mystery auth set x --account
shopper_a``). An account's lookup tries its own key first, then the channel's plain key, so a
one-account study works as it always did; a study with several accounts on a channel insists
on each account's own keys before it runs (:func:`missing`), since the plain key would post
every account's probes from one account.

Why a 0600 file before the keyring: it works the same on every machine (the simonw/llm
``keys.json`` pattern), and the environment overrides it without touching it.

Secrets are looked up when a channel opens and handed straight to the client library. They
never reach the store, exports or ``results/``. Every value handed out here is remembered
(in memory) so that :class:`RedactSecrets`, installed on the loggers of the HTTP libraries we
drive, replaces it with ``***`` in any log record: tweepy logs request headers, Authorization
included, at DEBUG level, and a user who turns DEBUG on for their own program must not see our
tokens in their logs. mystery itself never configures logging.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mystery.errors import MysteryError

ENV_PREFIX = "MYSTERY_"
CONFIG_DIR_ENV = "MYSTERY_CONFIG_DIR"
KEYRING_SERVICE = "mystery"
KEYS_FILE = "keys.json"

X_OAUTH1 = ("X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET")
X_BEARER = "X_BEARER_TOKEN"

#: Per channel, the alternative sets of keys that each suffice on their own.
CHANNEL_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "x": ((X_BEARER,), X_OAUTH1),
    "mastodon": (("MASTODON_TOKEN",),),
    "bluesky": (("BLUESKY_APP_PASSWORD",),),
    "email": (("EMAIL_PASSWORD",),),
}

Source = Literal["flag", "environment", "file", "keyring"]


class CredentialsError(MysteryError):
    """The credentials file or the keyring cannot be used as asked (what to do is in the text)."""


@dataclass(frozen=True)
class Found:
    """A secret and where it came from; ``repr`` and ``str`` never show the value."""

    key: str
    source: Source
    where: str  # "environment MYSTERY_<KEY>", "file <path>" or "keyring service 'mystery'"
    value: str = field(repr=False)

    def __str__(self) -> str:
        return f"{self.key} from {self.where}"


def env_name(key: str) -> str:
    return ENV_PREFIX + key


def account_suffix(account: str) -> str:
    """An account's part of its keys' names (``shopper.a`` → ``SHOPPER_A``). A study checks
    that no two accounts of a channel share one (``mystery.study.model``)."""
    return re.sub(r"[^A-Z0-9]+", "_", account.upper()).strip("_")


def account_key(key: str, account: str | None) -> str:
    """``key`` as ``account``'s own (``X_BEARER_TOKEN__SHOPPER_A``); ``key`` itself for none."""
    return f"{key}__{account_suffix(account)}" if account else key


def channel_keys(channel: str) -> tuple[str, ...]:
    """Every key a channel can use, in the order ``mystery auth`` asks for them."""
    return tuple(key for keys in CHANNEL_KEYS[channel] for key in keys)


def config_dir() -> Path:
    """The user config dir; ``$MYSTERY_CONFIG_DIR`` overrides it (tests, portable installs)."""
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override)
    import typer

    return Path(typer.get_app_dir("mystery"))


def keys_path() -> Path:
    return config_dir() / KEYS_FILE


# -- lookup ------------------------------------------------------------------------------------


def lookup(key: str, flag: str | None = None, *, account: str | None = None,
           shared: bool = True) -> Found | None:
    """Where ``key`` is set, in lookup order; None when it is set nowhere. With ``account``,
    that account's own key first, then (if ``shared``) the channel's plain one."""
    if account:
        own = lookup(account_key(key, account), flag)
        if own is not None or not shared:
            return own
    found: Found | None = None
    if flag:
        found = Found(key, "flag", "the command line", flag)
    elif value := os.environ.get(env_name(key)):
        found = Found(key, "environment", f"environment {env_name(key)}", value)
    elif value := read_file().get(key):
        found = Found(key, "file", f"file {keys_path()}", value)
    elif value := _keyring_get(key):
        found = Found(key, "keyring", f"keyring service {KEYRING_SERVICE!r}", value)
    if found is not None:
        _remember(found.value)
    return found


def get_secret(key: str, flag: str | None = None, *, account: str | None = None) -> str | None:
    """The value of ``key`` (``account``'s own first) from the first place that sets it (see
    the module docstring)."""
    found = lookup(key, flag, account=account)
    return found.value if found else None


def missing(channel: str, account: str) -> bool:
    """Whether ``account`` lacks a complete set of its own keys for ``channel``: what a
    channel with several accounts needs of each before a runner serves it."""
    return not any(all(lookup(k, account=account, shared=False) for k in keys)
                   for keys in CHANNEL_KEYS[channel])


def missing_help(channel: str, account: str | None = None) -> str:
    """What to set for ``channel`` (as ``account``): the environment variables, or ``mystery
    auth set``."""
    options = [
        " and ".join(env_name(account_key(k, account)) for k in keys) if len(keys) > 1
        else env_name(account_key(keys[0], account))
        for keys in CHANNEL_KEYS[channel]
    ]
    either = " or ".join(options)
    as_account = f" --account {account}" if account else ""
    return (
        f"run 'mystery auth set {channel}{as_account}', or set {either} in the environment "
        f"('mystery auth list{' ' + channel + as_account if account else ''}' shows what is "
        "set)"
    )


# -- the keys file -----------------------------------------------------------------------------


def read_file() -> dict[str, str]:
    """The keys file as a dict; empty when there is none. Refuses a file others can read."""
    path = keys_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror}") from None
    if os.name == "posix":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise CredentialsError(
                f"{path} is readable by other users (mode {mode:o}), so its keys may have "
                f"leaked; run 'chmod 600 {path}', and change the keys if others use this machine"
            )
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise CredentialsError(
            f"{path} is not a valid keys file ({reason}); fix it, or delete it and run "
            "'mystery auth set CHANNEL' again"
        ) from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise CredentialsError(
            f"{path} must hold one JSON object of KEY: \"value\" strings; fix it, or delete it "
            "and run 'mystery auth set CHANNEL' again"
        )
    for value in data.values():
        _remember(value)
    return data


def _write_file(data: Mapping[str, str]) -> Path:
    """Replace the keys file atomically; it is 0600 from its first byte (``mkstemp``)."""
    path = keys_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".keys-", suffix=".tmp")
    except OSError as exc:
        raise CredentialsError(
            f"cannot write to {path.parent}: {exc.strerror}; set {CONFIG_DIR_ENV} to a folder "
            "you can write, or use environment variables"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if os.name == "posix":
                os.fchmod(handle.fileno(), 0o600)
            json.dump(dict(sorted(data.items())), handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return path


def store_secrets(values: Mapping[str, str], *, use_keyring: bool = False) -> str:
    """Save ``values`` in the keys file (or the keyring) and say where they went.

    A key saved in one place is removed from the other, so ``mystery auth list`` never shows
    a stale copy that a later lookup would silently prefer or fall back to.
    """
    for value in values.values():
        _remember(value)
    data = read_file()
    if use_keyring:
        for key, value in values.items():
            _keyring_set(key, value)
        if any(key in data for key in values):
            _write_file({k: v for k, v in data.items() if k not in values})
        return f"keyring service {KEYRING_SERVICE!r}"
    for key in values:
        _keyring_delete(key)
    return f"file {_write_file({**data, **values})}"


def remove_secrets(keys: Iterable[str]) -> list[Found]:
    """Delete ``keys`` from the keys file and the keyring; return what was there (not env)."""
    keys = list(keys)
    data = read_file()
    removed = [Found(k, "file", f"file {keys_path()}", data[k]) for k in keys if k in data]
    if removed:
        _write_file({k: v for k, v in data.items() if k not in keys})
    for key in keys:
        if value := _keyring_get(key):
            _keyring_delete(key)
            removed.append(Found(key, "keyring", f"keyring service {KEYRING_SERVICE!r}", value))
    return removed


# -- the keyring (optional) --------------------------------------------------------------------


def _keyring_get(key: str) -> str | None:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a declared dependency
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, key) or None
    except (KeyringError, RuntimeError):  # no backend, or a locked one: skip it
        return None


def _keyring_set(key: str, value: str) -> None:
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    try:
        keyring.set_password(KEYRING_SERVICE, key, value)
    except NoKeyringError:
        raise CredentialsError(
            f"the system keyring cannot store {key}: this machine has no keyring backend; "
            "drop --keyring to keep keys in the owner-only keys file instead"
        ) from None
    except (KeyringError, RuntimeError) as exc:
        raise CredentialsError(
            f"the system keyring cannot store {key} ({type(exc).__name__}, is it locked?); "
            "drop --keyring to keep keys in the owner-only keys file instead"
        ) from None


def _keyring_delete(key: str) -> None:
    try:
        import keyring
        from keyring.errors import KeyringError, PasswordDeleteError
    except ImportError:  # pragma: no cover
        return
    with contextlib.suppress(PasswordDeleteError, KeyringError, RuntimeError):
        keyring.delete_password(KEYRING_SERVICE, key)


# -- keeping secrets out of logs ---------------------------------------------------------------

REDACTED = "***"
_known: set[str] = set()
_installed = False

#: The loggers that see request headers, signed URLs or bodies of the libraries we drive.
#: A filter on a logger applies to the records logged *on it*, so each is named exactly.
SENSITIVE_LOGGERS = (
    "tweepy.client",
    "tweepy.asynchronous.client",
    "tweepy.api",
    "tweepy.auth",
    "requests_oauthlib.oauth1_auth",
    "oauthlib.oauth1.rfc5849",
    "oauthlib.oauth1.rfc5849.signature",
    "urllib3.connectionpool",
    "httpx",
    "httpcore.http11",
    "mystery",
)


def redact(text: str) -> str:
    """``text`` with every secret handed out by this module replaced by ``***``."""
    for secret in sorted(_known, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class RedactSecrets(logging.Filter):
    """Rewrite a log record whose message or traceback holds a known secret; never drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _known:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as it would
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def protect(value: str) -> None:
    """Redact ``value`` from logs from now on: for secrets a channel derives from ours, such
    as a session token (Bluesky's ``accessJwt``) or an OAuth access token it obtained."""
    _remember(value)


def _remember(value: str) -> None:
    """Note a secret for redaction; install the filter the first time one is seen.

    Very short values are not redacted: replacing every "a" in a log would hide nothing."""
    global _installed
    if len(value) < 6:
        return
    _known.add(value)
    if not _installed:
        redactor = RedactSecrets()
        for name in SENSITIVE_LOGGERS:
            logging.getLogger(name).addFilter(redactor)
        for handler in logging.getLogger().handlers:
            handler.addFilter(redactor)
        _installed = True
