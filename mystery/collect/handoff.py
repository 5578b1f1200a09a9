"""A person in the loop: what the researcher is shown, and the post URLs they give back.

``manual`` mode shows a due probe (brand, handle, the exact text, and a compose link with the
text filled in) and the researcher posts it from their own app; ``confirm`` mode shows the same
and asks before the runner posts it. ``mystery sent PROBE URL`` names a post by its URL: this
module turns the URL into the platform's post id, which the runner then verifies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from mystery.errors import MysteryError

# Web "intents": a page of the platform's own app with the post written, waiting for the
# researcher to press Post. Mastodon's lives on the researcher's own instance.
_COMPOSE = {
    "x": "https://x.com/intent/post?text={text}",
    "bluesky": "https://bsky.app/intent/compose?text={text}",
    "mastodon": "{instance}/share?text={text}",
}

_URLS = {
    "x": re.compile(r"^(?:https?://)?(?:www\.|mobile\.)?(?:x|twitter)\.com/[^/]+/status(?:es)?/"
                    r"(\d{1,19})(?:[/?#].*)?$"),
    "mastodon": re.compile(r"^https?://[^/\s]+/(?:@[^/\s]+|web/statuses|users/[^/\s]+/statuses)"
                           r"/(\d{1,20})(?:[/?#].*)?$"),
    "bluesky": re.compile(r"^(?:https?://)?bsky\.app/profile/[^/\s]+/post/([a-z2-7]{13})"
                          r"(?:[/?#].*)?$"),
}
_EXAMPLES = {
    "x": "https://x.com/you/status/1860000000000000000",
    "mastodon": "https://mastodon.social/@you/113500000000000000",
    "bluesky": "https://bsky.app/profile/you.bsky.social/post/3lbxyz2abcd2k",
}


@dataclass(frozen=True)
class DueProbe:
    """A probe due now, as the researcher sees it."""

    probe_id: str
    brand: str
    channel: str
    handle: str
    text: str  # the exact text to post: one mention, then the question
    link: str | None  # compose link with the text filled in, when the platform has one
    planned_at: datetime
    grace_until: datetime | None = None  # manual: post it by then, or it is missed
    account: str = ""  # the researcher's account to post it from


def compose_link(channel: str, endpoint: str, text: str) -> str | None:
    """The platform's compose page with ``text`` filled in. The sandbox has no web app, so a
    sandbox Mastodon gets none; X and Bluesky links name the real app either way."""
    template = _COMPOSE.get(channel)
    if template is None or (channel == "mastodon" and not endpoint.startswith("http")):
        return None
    return template.format(text=quote(text, safe=""), instance=endpoint.rstrip("/"))


def post_id_from_url(channel: str, url: str) -> str:
    """The platform's id of the post at ``url`` (a bare id is accepted too). Bluesky gives the
    record key; the channel knows the researcher's DID that completes its ``at://`` URI."""
    url = url.strip()
    if channel in ("x", "mastodon") and re.fullmatch(r"\d{1,20}", url):
        return url
    if channel == "bluesky" and (m := re.fullmatch(r"at://[^/]+/app\.bsky\.feed\.post/"
                                                   r"([a-z2-7]{13})", url)):
        return m.group(1)
    pattern = _URLS.get(channel)
    if pattern is None:
        raise MysteryError(
            f"mystery sent records posts on x, mastodon and bluesky, not on {channel}; "
            "hand-logged channels use 'mystery log'"
        )
    found = pattern.match(url)
    if found is None:
        raise MysteryError(
            f"{url!r} is not the address of a {channel} post; copy the post's link from the "
            f"app, e.g. {_EXAMPLES[channel]}"
        )
    return found.group(1)
