"""``ratectl tui``: the live dashboard (Textual).

Imported only by the ``tui`` command: nothing else in ratectl imports Textual.
Modules, one widget each: :mod:`.app` (the app), :mod:`.hub_link` (the hub, followed in
a worker), :mod:`.rates_table`, :mod:`.pair_history`, :mod:`.event_log`,
:mod:`.status_bar`, :mod:`.filter_bar`, :mod:`.text_line`, and the dialogs :mod:`.form_screen`,
:mod:`.override_screen`, :mod:`.lock_screen`, :mod:`.store_screen`, :mod:`.help_screen`.
Pure parts, tested without a terminal: :mod:`.board` (the pairs' state and cells),
:mod:`.forms` (checking dialog input), :mod:`.events` (event log lines).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ratectl.tui.options import TuiOptions


def run(options: TuiOptions) -> None:
    from ratectl.tui.app import RatehubApp

    RatehubApp(options).run()
