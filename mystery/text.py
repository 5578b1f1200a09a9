"""Showing text we did not write (brands' replies) without letting it act on the screen or page.

Replies are stored verbatim (the store keeps the platform's text as-is: it is evidence), and
only made safe at the moment they are shown. Anyone can reply to a researcher's post, so a
reply may carry

- terminal escape sequences (``ESC [ 2 J`` clears the screen, OSC 8 forges links, OSC 52 can
  write the clipboard) and other C0/C1 control characters (``\\r`` overwrites a line);
- bidi controls (U+202A–U+202E, U+2066–U+2069) that reorder what follows, so a coder reads
  something other than what was sent ("Trojan Source");
- Markdown or HTML that would turn into links, images or script in a rendered report;
- 10,000 characters, enough to push everything else off the screen.

Each helper returns plain ``str`` (or a ``rich.text.Text``, which rich never parses for markup)
and makes the hidden visible rather than silently deleting it: a coder should see that a
reply tried something.

One thing is mended on arrival rather than on showing: a lone UTF-16 surrogate (JSON may spell
``"\\ud83d"``, and real clients send it when they cut an emoji in half) is not a character, and
no UTF-8 file or SQLite database can hold it. :func:`well_formed` turns each into U+FFFD, so a
reply that carries one is recorded like any other instead of stopping the study for good.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

PREVIEW = 280  # a post's length on X: enough to code most replies at a glance

_SURROGATE = re.compile("[\ud800-\udfff]")


def well_formed(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD; a pair spelt as two escapes
    (``"\\ud83d\\ude00"``) becomes the character it encodes. Text without surrogates is
    returned as it is, at the cost of one regex search."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# C0 and C1 controls, DEL, bidi controls, line/paragraph separators, and lone surrogates (from
# a JSON "\ud83d" escape: a terminal cannot encode them and rich would crash). Tab and line
# feed are among them: each newline policy maps them its own way.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")
_FLAT: dict[str, str] = {chr(c): _escape(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0),
                                                      *range(0x202A, 0x202F),
                                                      *range(0x2066, 0x206A), 0x2028, 0x2029]}
_FLAT |= {"\t": " ", "\n": "\\n"}
_KEEP: dict[str, str] = _FLAT | {"\n": "\n", "\u2028": "\n", "\u2029": "\n"}
# Code points that belong to the character before them: cutting just before one would split
# a letter from its accent or an emoji from its skin tone, gender or keycap.
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f", "\u20e3"}


def _attached(char: str) -> bool:
    return (
        char in _JOINERS
        or unicodedata.combining(char) != 0
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # skin-tone modifiers
        or "\U000e0020" <= char <= "\U000e007f"  # tag characters (flag subdivisions)
    )


def truncate(text: str, limit: int = PREVIEW, *, marker: str = "…") -> str:
    """At most about ``limit`` characters, ending with ``marker`` and how much was cut.

    The cut backs off so that an accent, a ZWJ emoji sequence or a skin tone stays whole, and
    the note (``… (+9,720 characters)``) tells a coder that the reply goes on."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(text) <= limit:
        return text
    cut = limit
    while cut > 0 and (_attached(text[cut]) or text[cut - 1] == "\u200d"):
        cut -= 1
    if cut == 0:  # one enormous cluster (a "Zalgo" pile of accents): cut it anyway
        cut = limit
    return f"{text[:cut]}{marker} (+{len(text) - cut:,} characters)"


def terminal_safe(text: str, *, limit: int | None = None, keep_newlines: bool = False) -> str:
    """``text`` that cannot move the cursor, recolour, retitle, reorder or hide on a terminal.

    Control characters and bidi controls become visible escapes (``\\x1b``, ``\\u202e``),
    tabs become a space, and newlines become ``\\n`` (one row in a table) unless
    ``keep_newlines``. ``limit`` truncates first (see :func:`truncate`), so an escape is never
    cut in half. Print the result with ``markup=False`` (or use :func:`terminal_text`), or
    rich will read ``[bold]`` in a reply as markup."""
    if limit is not None:
        text = truncate(text, limit)
    table = _KEEP if keep_newlines else _FLAT
    return _UNSAFE.sub(lambda m: table.get(m.group()) or _escape(ord(m.group())),
                       text.replace("\r\n", "\n"))


def terminal_text(text: str, *, limit: int | None = None, keep_newlines: bool = False) -> Text:
    """:func:`terminal_safe` as a ``rich.text.Text``: safe in a rich Table cell, where a plain
    string would be parsed as console markup."""
    from rich.text import Text

    return Text(terminal_safe(text, limit=limit, keep_newlines=keep_newlines))


# Every ASCII punctuation character may be backslash-escaped in CommonMark and then renders as
# itself; escaping all of them (rather than guessing which are special here) is what makes the
# result literal anywhere in a paragraph or a table cell. & < > " ' become HTML entities
# instead, which also keeps a non-CommonMark renderer or raw HTML output safe.
# The backslash comes first, so that the backslashes added for the others stay single.
_MARKDOWN = "\\!#$%()*+,-./:;=?@[]^_`{|}~"


def markdown_cell(text: str) -> str:
    """``text`` as it must stand in a Markdown table cell to read as itself: no tag, link,
    emphasis, code span or column break, on one line. Escapes only what would act (not every
    punctuation mark), so a brand called ``Mode & Co`` stays readable in the file itself.

    Control characters and bidi controls are made visible as in :func:`terminal_safe`."""
    text = re.sub(r"\s*\n\s*", " ", terminal_safe(text, keep_newlines=True))
    text = re.sub(r"&(?=#?\w+;)", "&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", text)


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet shows as text: anyone can reply ``=HYPERLINK(…)`` to a probe, and
    a spreadsheet would run it as a formula (CSV injection); a leading ``'`` prevents it."""
    return f"'{cell}" if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell
