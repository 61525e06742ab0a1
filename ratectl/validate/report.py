"""The report three ways: text lines (Rich), the JSON envelope, JUnit XML. Pure.

Text: one line per check (result, id, message, duration), the details indented under
a failure, an error or a warning, and the summary last. Rich styles the result on a
terminal; piped or with ``NO_COLOR`` the same text comes out plain
(:func:`ratectl.output.console`). JSON bypasses Rich (``Report.to_dict``).

JUnit XML (one ``testsuite``, one ``testcase`` per check, classname
``ratectl.validate.<group>``): fail -> ``<failure>``, error -> ``<error>``, skip ->
``<skipped>``; a warning passes, its message and details in ``<system-out>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rich.text import Text

from ratectl.validate.model import CheckResult, Report, Result

STYLE = {
    Result.PASS: "green",
    Result.WARN: "yellow",
    Result.SKIP: "dim",
    Result.FAIL: "bold red",
    Result.ERROR: "bold red",
}
ID_WIDTH = 22
SHOW_DETAILS = frozenset({Result.FAIL, Result.ERROR, Result.WARN})


def duration(ms: int) -> str:
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def header(suite: str, daemon: str, store: str) -> Text:
    return Text(
        f"ratectl validate: suite {suite} against {daemon} (scratch store {store})", style="bold"
    )


def line(res: CheckResult) -> Text:
    out = Text()
    out.append(f"{res.result.value.upper():<5}", style=STYLE[res.result])
    out.append(f"  {res.id:<{ID_WIDTH}}  ")
    out.append(res.message)
    out.append(f"  ({duration(res.duration_ms)})", style="dim")
    if res.result in SHOW_DETAILS:
        for d in res.details:
            out.append(f"\n{'':7}- {d}")
    return out


def summary(report: Report) -> Text:
    c = report.counts()
    parts = [f"{c['pass']} passed", f"{c['warn']} warned", f"{c['skip']} skipped"]
    parts += [f"{c['fail']} failed", f"{c['error']} errors"]
    verdict = report.verdict()
    out = Text()
    out.append(f"{verdict.upper()}", style="bold green" if verdict == "passed" else "bold red")
    out.append(
        f": {len(report.checks)} checks, {', '.join(parts)} in {duration(report.duration_ms)}"
    )
    if report.aborted:
        out.append(f"\nstopped: {report.aborted}")
    return out


def junit(report: Report) -> bytes:
    c = report.counts()
    counts = {
        "tests": str(len(report.checks)),
        "failures": str(c["fail"]),
        "errors": str(c["error"]),
        "skipped": str(c["skip"]),
        "time": f"{report.duration_ms / 1000:.3f}",
    }
    root = ET.Element("testsuites", {"name": "ratectl validate", **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": f"ratectl validate ({report.suite})",
            "timestamp": report.started_at.strftime("%Y-%m-%dT%H:%M:%S"),
            **counts,
        },
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("daemon", report.daemon),
        ("suite", report.suite),
        ("store", report.store),
        ("result", report.verdict()),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    for res in report.checks:
        _testcase(suite, res)
    ET.indent(root)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml + b"\n"


def _testcase(suite: ET.Element, res: CheckResult) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"ratectl.validate.{res.group}",
        name=res.id,
        time=f"{res.duration_ms / 1000:.3f}",
    )
    text = "\n".join(res.details) or res.message
    tag = {Result.FAIL: "failure", Result.ERROR: "error", Result.SKIP: "skipped"}.get(res.result)
    if tag is not None:
        el = ET.SubElement(case, tag, message=res.message)
        if tag != "skipped":
            el.set("type", res.result.value)
            el.text = text
        return
    out = ET.SubElement(case, "system-out")
    out.text = f"{res.result.value.upper()}: {res.message}" + "".join(
        f"\n- {d}" for d in res.details
    )
