"""Connectivity: the daemon is alive, answers with our key, refuses without one, and
every place that states its version states the same one."""

from __future__ import annotations

from ratectl import __version__
from ratectl.errors import AuthError
from ratectl.validate.context import Ctx
from ratectl.validate.model import Fail, Outcome, judged, passed, warned

WRONG_KEY = "ratectl-validate-deliberately-wrong-key"


async def health(ctx: Ctx) -> Outcome:
    reply = await ctx.probe.raw("GET", "/healthz", key=False)
    env = reply.envelope()
    if reply.status != 200 or env is None or not env["success"]:
        raise Fail(
            f"GET /healthz answered HTTP {reply.status}"
            + ("" if env else ", not a ratehubd envelope; is --url pointing at ratehubd?")
        )
    data = env.get("data") or {}
    if data.get("status") != "ok":
        raise Fail(f"GET /healthz says status {data.get('status')!r}, not 'ok'")
    return passed(f"ratehubd {data.get('version', '?')} is alive at {ctx.opts.url}")


async def api(ctx: Ctx) -> Outcome:
    st = await ctx.status()
    integ, engine = st["integration"], st["rateEngine"]
    what = (
        f"the key ({ctx.opts.token_source}) is accepted; {len(engine.get('pairs', []))} pairs, "
        f"{st['websocketHub'].get('connections', '?')} WebSocket clients"
    )
    if integ.get("status") != "healthy":
        return warned(f"{what}; but integration.status is {integ.get('status')!r}")
    return passed(what)


async def auth(ctx: Ctx) -> Outcome:
    problems = []
    for label, key in (("no key", False), ("a wrong key", WRONG_KEY)):
        reply = await ctx.probe.raw("GET", "/api/rates/get", key=key)
        if reply.status != 401:
            problems.append(
                f"GET /api/rates/get with {label} answered HTTP {reply.status}, not 401: "
                "the API does not enforce authentication"
            )
    try:
        from ratectl.validate.hub import HubClient

        hub = await HubClient.open(ctx.opts.url, None, ctx.timeout)
    except AuthError:
        pass  # refused before the upgrade, as it should be
    else:
        await hub.close()
        problems.append("the WebSocket hub accepted a connection without a key")
    return judged("requests without a valid key get 401 (HTTP and WebSocket)", problems)


async def version(ctx: Ctx) -> Outcome:
    health = await ctx.probe.raw("GET", "/healthz", key=False)
    env = health.envelope() or {}
    st = await ctx.status()
    openapi = await ctx.probe.raw("GET", "/openapi.json", key=False)
    seen = {
        "/healthz": (env.get("data") or {}).get("version"),
        "system status": st["integration"].get("version"),
    }
    if openapi.status == 200 and isinstance(openapi.body, dict):
        seen["OpenAPI"] = (openapi.body.get("info") or {}).get("version")
    missing = [where for where, v in seen.items() if not v]
    if missing:
        raise Fail(f"no version in {', '.join(missing)}")
    if len(set(seen.values())) > 1:
        raise Fail(
            "the daemon states different versions",
            [f"{where}: {v}" for where, v in seen.items()],
        )
    daemon = str(next(iter(seen.values())))
    if _minor(daemon) != _minor(__version__):
        return warned(
            f"ratehubd {daemon}, ratectl {__version__}: minor versions differ",
            ["a ratectl of the daemon's version knows its API best"],
        )
    return passed(f"ratehubd {daemon} everywhere ({', '.join(seen)}); ratectl {__version__}")


def _minor(v: str) -> tuple[str, ...]:
    return tuple(v.split(".")[:2])


RUN = {
    "connectivity.health": health,
    "connectivity.api": api,
    "connectivity.auth": auth,
    "connectivity.version": version,
}
