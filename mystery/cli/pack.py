"""``mystery pack``: the client pack (one client brand against its peers: page, PDF, slides).

Parses the options and calls :func:`mystery.pack.make.make_pack`; the files written go to
stderr, the page's path to stdout (so a script can open it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mystery.cli.console import err_console, friendly_errors, out_console, shown_path
from mystery.cli.options import ColourOption, DbOption, ResultsOption, colour_of


@friendly_errors
def pack(
    source: Annotated[str, typer.Argument(
        metavar="STUDY_OR_SERIES", show_default=False,
        help="A study file (its store's probes, with the committed other years of its series) "
             "or a series name (what is committed under results/).")],
    client: Annotated[str, typer.Option("--client", metavar="BRAND", show_default=False,
                                        help="The client brand, named as in the study.")],
    out: Annotated[Path | None, typer.Option(
        "--out", show_default=False,
        help="The folder to write; by default pack/<client>/ beside the results folder.")]
    = None,
    peers: Annotated[list[str] | None, typer.Option(
        "--peers", metavar="BRAND", show_default=False,
        help="A peer brand to compare with (repeat for more); by default every other brand.")]
    = None,
    colour: ColourOption = None,
    no_pdf: Annotated[bool, typer.Option("--no-pdf", help="Skip the PDF (it is printed with "
                                         "headless Chromium, which must then be installed).")]
    = False,
    db: DbOption = None,
    results: ResultsOption = Path("results"),
) -> None:
    """Write a client pack: the client against its peers as a page, a PDF and slide charts."""
    from mystery.pack import make

    chosen = colour_of(colour)
    if source.endswith(".toml") or Path(source).is_file():
        from mystery.study.load import load_study

        built = make.from_study(load_study(Path(source)), db, results.resolve().parent)
    else:
        built = make.from_series(source, results.resolve().parent)
    target = out if out is not None else make.default_out(client, results)
    files = make.make_pack(built, client, target, peers=peers or (), colour=chosen,
                           pdf=not no_pdf, results=results)
    for path in files:
        err_console().print(f"wrote {shown_path(path)}")
    out_console().print(shown_path(target / make.PAGE))


def register(app: typer.Typer) -> None:
    """Add the pack command to the app."""
    app.command()(pack)
