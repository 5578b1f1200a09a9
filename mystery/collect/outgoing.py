"""The post a probe makes: one function, so the runner that posts it and the manual mode that
looks for it on the researcher's timeline always mean the same text to the same handle."""

from __future__ import annotations

from mystery.channels.base import Outgoing
from mystery.store.rows import ProbeRow
from mystery.study.model import Study


def outgoing(study: Study, probe: ProbeRow) -> Outgoing:
    """``probe`` as its channel posts it: to the brand's handle there, with the probe's text."""
    handle = study.brand(probe.brand).handles.get(probe.channel, "")
    return Outgoing(probe.id, handle, probe.text)
