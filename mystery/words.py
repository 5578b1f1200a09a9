"""The word table's names (DESIGN.md, "Words") as values and types the code shares.

Why one module at the ground floor: the study model, the plan, the store, the channels and
analysis all speak of channels, probe states and codes. When each kept its own tuple or bare
strings, the study modules imported one another for a tuple of names and a typo in a state
was a silent miss; a ``Literal`` type lets mypy catch it. This module imports nothing.
"""

from __future__ import annotations

from typing import Literal

AUTOMATED_CHANNELS = ("x", "mastodon", "bluesky", "email")
"""Channels the runner sends to and reads from through a platform's API."""

HAND_LOGGED_CHANNELS = ("phone", "chat", "facebook", "instagram", "linkedin", "whatsapp", "web")
"""Channels a researcher times by hand (``mystery log``)."""

CHANNELS = AUTOMATED_CHANNELS + HAND_LOGGED_CHANNELS

ProbeState = Literal["planned", "sending", "sent", "settled"]
"""Where a probe is in its life: ``sending`` is the durable intent before a post (rule 3)."""

Outcome = Literal["answered", "unanswered", "excluded"]
"""How a settled probe ended: ``unanswered`` is censored at the cutoff, never dropped."""

SendMode = Literal["auto", "confirm", "manual"]
"""Who posts a probe: the runner, the runner after a yes, or the researcher by hand."""

Code = Literal["acknowledgement", "resolution", "not_brand"]
"""What a coder says a reply is."""

BrandStat = Literal["mean", "median"]
"""The per-brand statistic a ranking uses."""
