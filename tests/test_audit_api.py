"""The audit trail through the daemon: every change leaves a record, in the same
transaction, and the chain verifies over HTTP; tampering is caught."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx

from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_business_flow_is_audited_and_verifies(runtime: Runtime) -> None:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{runtime.api_port}", headers=AUTH
    ) as c:
        body = {
            "currencyPair": "USDCAD",
            "buyRate": 1.37,
            "sellRate": 1.33,
            "storeId": "s1",
            "reason": "High demand period",
        }
        assert (await c.post("/api/rates/set", json=body)).status_code == 200
        assert (await c.post("/api/rates/set", json={**body, "buyRate": 1.38})).status_code == 200
        assert (
            await c.post("/api/rates/clear", json={"currencyPair": "USD/CAD", "storeId": "s1"})
        ).status_code == 200
        lock = (
            await c.post(
                "/api/rates/lock",
                json={"currencyPair": "USD/CAD", "storeId": "s1", "reference": "TX1"},
            )
        ).json()["data"]
        assert (await c.post(f"/api/rates/locks/{lock['lockId']}/consume")).status_code == 200

        records: list[dict[str, Any]] = (await c.get("/api/audit", params={"order": "asc"})).json()[
            "data"
        ]
        types = [r["type"] for r in records]
        assert types == [
            "override_set",
            "override_set",
            "override_cleared",
            "lock_created",
            "lock_consumed",
        ]
        first, second = records[0], records[1]
        assert first["actor"] == "env" and first["store_id"] == "s1" and first["pair"] == "USD/CAD"
        assert first["reason"] == "High demand period" and first["before"] is None
        assert second["before"]["buyRate"] == "1.37" and second["after"]["buyRate"] == "1.38"
        assert ADMIN_KEY not in str(records)  # the actor is the key id, never the secret

        only_locks = (
            await c.get("/api/audit", params=[("type", "lock_created"), ("storeId", "s1")])
        ).json()["data"]
        assert [r["type"] for r in only_locks] == ["lock_created"]

        verdict = (await c.get("/api/audit/verify")).json()["data"]
        assert verdict["ok"] is True and verdict["checked"] == 5

        # change one field of one row directly in SQLite: verify names that row
        with sqlite3.connect(runtime.config.state_path / "ratehub.db") as db:
            db.execute("update audit set reason = 'nothing to see' where seq = 2")
        verdict = (await c.get("/api/audit/verify")).json()["data"]
        assert verdict["ok"] is False and verdict["problem"]["seq"] == 2


async def test_audit_needs_an_admin_key(runtime: Runtime) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.api_port}") as c:
        assert (await c.get("/api/audit")).status_code == 401
        bad = await c.get("/api/audit", headers=AUTH, params={"since": "yesterday"})
        assert bad.status_code == 400 and "since" in bad.json()["error"]


async def test_out_of_range_seqs_and_limits_are_a_400_not_a_500(runtime: Runtime) -> None:
    """A seq past the databases' INTEGER overflowed SQLite (a 500); now a 400 naming it."""
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{runtime.api_port}",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ) as c:
        for query in (
            {"afterSeq": str(2**64)},
            {"beforeSeq": "-1"},
            {"limit": "0"},
            {"limit": str(2**70)},
        ):
            got = await c.get("/api/audit", params=query)
            assert got.status_code == 400, (query, got.text)
            body = got.json()
            assert body["code"] == "invalid_request" and next(iter(query)) in body["error"]
        assert (await c.get("/api/audit", params={"afterSeq": str(2**63 - 1)})).status_code == 200
