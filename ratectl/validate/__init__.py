"""``ratectl validate``: the system validation suite and business-flow test.

The guide's ``systemValidator.validate()``, ``generateReport()`` and
``testBusinessFlow()`` as one command that operators run after a deploy and CI runs
on every change.

Layout::

    model.py       results, the report and its exit code (pure)
    registry.py    every check: id, title, suites, what it pulls in; selection (pure)
    invariants.py  the engine's promises about a published rate, in Decimal (pure)
    probe.py       the daemon's HTTP API for checks (httpx, async), errors translated
    hub.py         a WebSocket client that records every frame with its arrival time
    checks/        the checks: one module per group; the flow in flow, locks, cleanup
    runner.py      runs a selection in order: timing, budgets, fail-fast, abort, cleanup
    report.py      the report as text (Rich), JSON and JUnit XML

Heavy modules are imported only when ``ratectl validate`` runs.
"""
