"""Replies are hostile input: shown on a terminal or in Markdown, they must not act, only read.

The store keeps them verbatim; these helpers make them safe at the moment they are shown."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from rich.table import Table

from mystery.text import (
    PREVIEW,
    markdown_cell,
    terminal_safe,
    terminal_text,
    truncate,
    well_formed,
)

ESC = "\x1b"
HOSTILE = (
    f"{ESC}[2J{ESC}[H"  # clear the screen, cursor home
    f"{ESC}]0;pwned{ESC}\\"  # set the window title
    f"{ESC}]8;;https://evil.example{ESC}\\click{ESC}]8;;{ESC}\\"  # a forged hyperlink
    f"{ESC}]52;c;ZXZpbA=={chr(7)}"  # write the clipboard
    "Thanks!\rWe never reply"  # carriage return: overwrite what came before
    "\x08\x00\x9b31m"  # backspace, NUL, C1 CSI
)


def _no_controls(text: str) -> bool:
    return not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text)


def test_escape_sequences_and_controls_become_visible_not_active() -> None:
    safe = terminal_safe(HOSTILE)
    assert _no_controls(safe) and "\n" not in safe
    assert safe.startswith(r"\x1b[2J\x1b[H\x1b]0;pwned\x1b\\")
    assert r"\x07" in safe and r"\x0dWe never reply" in safe and r"\x9b31m" in safe
    assert "Thanks!" in safe and "click" in safe


def test_bidi_overrides_are_shown_so_the_coder_reads_what_was_sent() -> None:
    # "Trojan Source": U+202E makes "exe.txt" display as "txt.exe".
    text = "invoice\u202etxt.exe and \u2066isolated\u2069 and \u202aembedded\u202c"
    safe = terminal_safe(text)
    assert _no_controls(safe)
    assert safe == r"invoice\u202etxt.exe and \u2066isolated\u2069 and \u202aembedded\u202c"


def test_right_to_left_text_itself_is_left_alone() -> None:
    arabic = "شكرا لتواصلك معنا، سنرد قريبا"
    hebrew = "תודה, נחזור אליך"
    assert terminal_safe(arabic) == arabic
    assert terminal_safe(hebrew) == hebrew


def test_newlines_and_tabs() -> None:
    text = "Hi\tthere\r\nline two\nline three\u2028four"
    assert terminal_safe(text) == r"Hi there\nline two\nline three\u2028four"
    assert terminal_safe(text, keep_newlines=True) == "Hi there\nline two\nline three\nfour"
    assert terminal_safe("a\rb", keep_newlines=True) == r"a\x0db"


def test_emoji_and_other_scripts_pass_through_whole() -> None:
    text = "We're on it 👍🏽 👩‍👩‍👧 🇬🇧 1️⃣ Café Zoë 東京 — ok"
    assert terminal_safe(text) == text
    assert markdown_cell("👩‍👩‍👧 東京") == "👩‍👩‍👧 東京"


def test_lone_surrogates_do_not_crash_the_terminal() -> None:
    safe = terminal_safe("broken \ud83d emoji")
    assert safe == r"broken \ud83d emoji"
    Console(file=io.StringIO()).print(safe)  # would raise UnicodeEncodeError unescaped


def test_rich_markup_in_a_reply_is_not_interpreted() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system="truecolor", force_terminal=True)
    table = Table()
    table.add_column("reply")
    reply = f"[bold red]urgent[/] [link=https://evil.example]x[/link] {ESC}[5m"
    table.add_row(terminal_text(reply))
    console.print(table)
    output = buffer.getvalue()
    assert "[bold red]urgent[/]" in output
    assert "[link=https://evil.example]" in output
    assert "https://evil.example" not in output.replace("[link=https://evil.example]", "")
    assert r"\x1b[5m" in output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("[win a prize](https://evil.example)", r"\[win a prize\](https://evil.example)"),
        ("![](https://evil.example/t.png)", r"!\[\](https://evil.example/t.png)"),
        ("**bold** _it_ `code`", r"\*\*bold\*\* \_it\_ \`code\`"),
        ("a | b | c", r"a \| b \| c"),  # would split a table cell
        ("Mode & Co", "Mode & Co"),  # nothing to act: stays readable in the file
        ("&lt; already escaped", "&amp;lt; already escaped"),
        ("C:\\path\\file", r"C:\\path\\file"),
        (f"{ESC}[31mred\u202e", r"\\x1b\[31mred\\u202e"),
    ],
)
def test_a_markdown_cell_renders_literally(text: str, expected: str) -> None:
    assert markdown_cell(text) == expected


def test_a_markdown_cell_is_one_line() -> None:
    assert markdown_cell("one\r\ntwo\n\n  three") == "one two three"


def test_ten_thousand_characters_are_cut_with_a_note() -> None:
    body = "Thank you for waiting. " * 435  # 10,005 characters
    short = truncate(body)
    assert short.startswith(body[:PREVIEW]) or body.startswith(short.split("…")[0])
    assert short.endswith(f"… (+{len(body) - PREVIEW:,} characters)")
    assert len(short) < PREVIEW + 30
    assert truncate("short") == "short"
    assert truncate("x" * PREVIEW) == "x" * PREVIEW


def test_cutting_never_splits_an_emoji_or_an_accent() -> None:
    family = "👩\u200d👩\u200d👧"
    for cut in range(10, 15):
        short = truncate("a" * 10 + family + "b" * 10, cut)
        kept = short.split("…")[0]
        assert kept in ("a" * 10, "a" * 10 + family), (cut, kept)
    assert truncate("e\u0301" * 10, 3).split("…")[0] == "e\u0301"
    assert truncate("a👍🏽b", 2).split("…")[0] == "a"


def test_truncate_then_escape_never_cuts_an_escape_in_half() -> None:
    body = (ESC + "[2J") * 3000
    safe = terminal_safe(body, limit=100)
    assert _no_controls(safe)
    assert safe.split("…")[0].endswith(("[2J", r"\x1b"))
    assert safe.endswith(f"(+{len(body) - 100:,} characters)")


def test_ten_thousand_hostile_characters_are_made_safe() -> None:
    """How fast is a benchmark (tests/perf/test_text_perf.py), not a timed unit test."""
    body = hostile_body()
    assert _no_controls(terminal_safe(body))
    assert "<" not in markdown_cell(body)


def hostile_body() -> str:
    """Ten thousand characters, mostly escapes and punctuation: the worst reply to clean."""
    return ((HOSTILE + "👍🏽 <b>x</b> \u202e") * 100)[:10_000]


def test_a_lone_surrogate_becomes_the_replacement_character_and_a_pair_its_character() -> None:
    import json

    assert well_formed(json.loads('"sorry \\ud83d"')) == "sorry \ufffd"
    assert well_formed(json.loads('"\\ud83d\\ude00 ok"')) == "😀 ok"
    assert well_formed("\udc80 and \ud800") == "\ufffd and \ufffd"
    plain = "👩‍👩‍👧 東京"
    assert well_formed(plain) is plain  # nothing to mend: the same object back
    for text in ("a \ud83d", "\udfff", "x\ud800\ud800y"):
        well_formed(text).encode("utf-8")  # storable
