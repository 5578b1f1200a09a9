"""The channels' tests share the real mail servers of ``tests/mail``."""

from tests.mail.fixtures import dovecot, endpoint, mailbox, smtp

__all__ = ["dovecot", "endpoint", "mailbox", "smtp"]
