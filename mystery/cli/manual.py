"""``mystery sent``: the researcher names the post they made by hand for a ``manual`` probe."""

from __future__ import annotations

from typing import Annotated

import typer

from mystery.cli.console import err_console, friendly_errors
from mystery.cli.options import DbOption, StudyPath


@friendly_errors
def sent(
    study: StudyPath,
    probe: Annotated[str, typer.Argument(help="The probe's id, e.g. p0007 (as 'mystery run' "
                                         "showed it).", show_default=False)],
    url: Annotated[str, typer.Argument(help="The link to your post, e.g. "
                                       "https://x.com/you/status/1860000000000000000.",
                                       show_default=False)],
    db: DbOption = None,
) -> None:
    """Record that you posted a manual probe yourself, at this URL.

    The running (or next) 'mystery run' checks the post with the platform — it must be your
    account's and mention the brand — and records the platform's own time for it. Use it when
    the runner did not find your post by its text (you edited it) or no runner was running.
    """
    from mystery.clock import RealClock
    from mystery.collect.ledger import record_claim
    from mystery.collect.run import store_path
    from mystery.store.store import Store
    from mystery.study.load import load_study

    loaded = load_study(study)
    path = store_path(loaded, db)
    with Store.open(path, create=False) as store:
        message_id = record_claim(loaded.study, store, probe, url, RealClock().now())
    err_console().print(
        f"{probe}: noted post {message_id}. 'mystery run' checks it with the platform on its "
        "next pass and records the platform's own time.", markup=False, highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command()(sent)
