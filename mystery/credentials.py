"""Where credentials come from: environment variables first, then the system keyring.

Secrets are looked up at the moment a channel opens and handed straight to the client library;
they are never written to the store, logs, exports or ``results/`` (issue: secrets). The sandbox
needs none.
"""

from __future__ import annotations

import os

ENV_PREFIX = "MYSTERY_"
KEYRING_SERVICE = "mystery"

X_OAUTH1 = ("X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET")
X_BEARER = "X_BEARER_TOKEN"


def env_name(key: str) -> str:
    return ENV_PREFIX + key


def get_secret(key: str) -> str | None:
    """``MYSTERY_<KEY>`` from the environment, else the keyring entry ``mystery/<KEY>``.

    The keyring is optional: on a headless machine without a backend it is simply skipped.
    """
    value = os.environ.get(env_name(key))
    if value:
        return value
    try:
        import keyring
        from keyring.errors import KeyringError

        try:
            stored = keyring.get_password(KEYRING_SERVICE, key)
        except KeyringError:
            return None
        return stored or None
    except ImportError:  # pragma: no cover - keyring is a declared dependency
        return None
