"""Moderation queue, audit log, analytics and enforced platform settings, as the admin screens use them."""

from __future__ import annotations

from typing import Any

from tests.support.accounts import auth, signup, signup_body
from tests.support.admins import confirmed_post, make_admin
from truebond import bootstrap

REASON = "this profile uses stolen photos"


async def _report(client: Any, reporter: dict[str, Any], target: dict[str, Any], report_type: str = "photo") -> str:
    resp = await client.post(
        f"/api/users/report/{target['user']['id']}",
        json={"reason": REASON, "report_type": report_type},
        headers=auth(reporter["access_token"]),
    )
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["report_id"])


async def test_moderation_queue_approve_remove_and_ban(client: Any, runtime: bootstrap.Runtime) -> None:
    admin, boss = await make_admin(client, runtime), await make_admin(client, runtime, "super_admin")
    reporter, spammer, faker = await signup(client), await signup(client), await signup(client)
    r1 = await _report(client, reporter, spammer, "message")
    r2 = await _report(client, reporter, faker, "photo")
    r3 = await _report(client, reporter, spammer, "profile")

    queue = await (await client.get("/api/admin/moderation/reports", params={"status": "pending"}, headers=admin["headers"])).json()
    assert [r["id"] for r in queue["reports"]] == [r3, r2, r1] and queue["total"] == 3
    assert queue["reports"][0]["reason"] == REASON
    photos = await (await client.get("/api/admin/moderation/reports", params={"report_type": "photo"}, headers=admin["headers"])).json()
    assert [r["id"] for r in photos["reports"]] == [r2]
    stats = await (await client.get("/api/admin/moderation/stats", headers=admin["headers"])).json()
    assert stats["pending"] == 3 and stats["pending_by_type"]["photo"] == 1

    # Approve needs no token; resolving twice is a 409.
    assert (await client.post(f"/api/admin/moderation/reports/{r1}/approve", headers=admin["headers"])).status == 200
    assert (await client.post(f"/api/admin/moderation/reports/{r1}/approve", headers=admin["headers"])).status == 409
    # Remove (two-step, sent with no body) takes the reported bio and photos down.
    resp = await confirmed_post(client, f"/api/admin/moderation/reports/{r2}/remove", admin["headers"])
    assert resp.status == 200, await resp.text()
    profile = await (await client.get(f"/api/users/profile/{faker['user']['id']}", headers=auth(reporter["access_token"]))).json()
    assert profile["photos"] == [] and profile["bio"] == ""
    # Ban is for super admins only, two-step, and ends the account's sessions.
    assert (await client.post(f"/api/admin/moderation/reports/{r3}/ban", headers=admin["headers"])).status == 403
    resp = await confirmed_post(client, f"/api/admin/moderation/reports/{r3}/ban", boss["headers"])
    assert resp.status == 200, await resp.text()
    assert (await client.get("/api/auth/me", headers=auth(spammer["access_token"]))).status == 401
    login = await client.post("/api/auth/login", json={"email": spammer["user"]["email"], "password": "correct-horse-1"})
    assert login.status == 401

    statuses = {
        r["id"]: r["status"]
        for r in (await (await client.get("/api/admin/moderation/reports", headers=admin["headers"])).json())["reports"]
    }
    assert statuses == {r1: "approved", r2: "removed", r3: "banned"}
    logs = await (await client.get("/api/admin/audit-logs", headers=admin["headers"])).json()
    moderation = [(e["action"], e["actor"]) for e in logs["logs"] if e["action"].startswith("moderation_")]
    assert moderation == [
        ("moderation_ban", f"admin:{boss['user_id']}"),
        ("moderation_remove", f"admin:{admin['user_id']}"),
        ("moderation_approve", f"admin:{admin['user_id']}"),
    ]


async def test_audit_log_filters_by_actor_action_and_time_newest_first(client: Any, runtime: bootstrap.Runtime) -> None:
    admin, other = await make_admin(client, runtime), await make_admin(client, runtime)
    a, b = await signup(client), await signup(client)
    await confirmed_post(client, f"/api/admin/users/{a['user']['id']}/suspend", admin["headers"], json={"reason": "spam"})
    await confirmed_post(client, f"/api/admin/users/{b['user']['id']}/shadow-ban", other["headers"])
    await client.post(f"/api/admin/users/{a['user']['id']}/reactivate", json={"reason": "appeal"}, headers=other["headers"])

    everything = await (await client.get("/api/admin/audit-logs", headers=admin["headers"])).json()
    actions = [e["action"] for e in everything["logs"]]
    # Role grants (from the CLI) are audited too; each performed action appears exactly once.
    assert actions[:3] == ["reactivate", "shadow_ban", "suspend"] and actions.count("role_grant") == 2
    assert everything["logs"][0]["reason"] == "appeal" and everything["logs"][0]["request_id"]
    mine = await (await client.get("/api/admin/audit-logs", params={"actor": f"admin:{admin['user_id']}"}, headers=admin["headers"])).json()
    assert [e["action"] for e in mine["logs"]] == ["suspend"]
    only = await (await client.get("/api/admin/audit-logs", params={"action": "shadow_ban"}, headers=admin["headers"])).json()
    assert [e["target_id"] for e in only["logs"]] == [b["user"]["id"]]
    first = everything["logs"][-1]["created_at"]
    late = await (await client.get("/api/admin/audit-logs", params={"from": "2999-01-01T00:00:00Z"}, headers=admin["headers"])).json()
    early = await (await client.get("/api/admin/audit-logs", params={"to": first}, headers=admin["headers"])).json()
    assert late["logs"] == [] and early["logs"] == []
    assert (await client.get("/api/admin/audit-logs", params={"from": "yesterday"}, headers=admin["headers"])).status == 422
    # No route edits or deletes an entry.
    entry = everything["logs"][0]["id"]
    for method in ("PUT", "PATCH", "DELETE"):
        assert (await client.request(method, f"/api/admin/audit-logs/{entry}", headers=admin["headers"])).status in (404, 405)


async def test_analytics_come_from_projections(client: Any, runtime: bootstrap.Runtime) -> None:
    admin = await make_admin(client, runtime)
    await signup(client, gender="male", age=30)
    await signup(client, gender="female", age=22)
    headers = admin["headers"]
    overview = await (await client.get("/api/admin/analytics/overview", headers=headers)).json()
    assert overview["total_users"] == 3 and overview["new_users_today"] == 3
    assert overview["total_messages"] == 0 and overview["total_calls"] == 0 and overview["total_revenue"] == 0
    growth = await (await client.get("/api/admin/analytics/user-growth", params={"period": "week"}, headers=headers)).json()
    assert growth["total_new"] == 3 and len(growth["series"]) == 8
    demo = await (await client.get("/api/admin/analytics/demographics", headers=headers)).json()
    assert demo["gender"]["male"] == 1 and demo["age_groups"]["18-24"] == 1
    activity = await (await client.get("/api/admin/analytics/activity", headers=headers)).json()
    assert activity["logins"] >= 4 and activity["active_users"] == 3
    for name in ("revenue", "highlights"):
        resp = await client.get(f"/api/admin/analytics/{name}", headers=headers)
        assert resp.status == 200, name
    assert (await client.get("/api/admin/analytics/overview", params={"period": "forever"}, headers=headers)).status == 422


async def test_settings_only_enforced_keys_and_each_has_its_effect(client: Any, runtime: bootstrap.Runtime) -> None:
    boss, admin = await make_admin(client, runtime, "super_admin"), await make_admin(client, runtime)
    reporter, target = await signup(client), await signup(client)
    assert (await client.get("/api/admin/settings", headers=admin["headers"])).status == 403
    current = await (await client.get("/api/admin/settings", headers=boss["headers"])).json()
    assert current["settings"] == {"registrations_open": True, "max_reports_per_day": 20}
    bad = await client.put("/api/admin/settings", json={"settings": {"maintenance_mode": True}}, headers=boss["headers"])
    assert bad.status == 422
    assert (await client.put("/api/admin/settings", json={"message_price": 3}, headers=boss["headers"])).status == 422

    # Two-step like every destructive action.
    first = await client.put(
        "/api/admin/settings", json={"settings": {"registrations_open": False, "max_reports_per_day": 1}}, headers=boss["headers"]
    )
    token = (await first.json())["confirm_token"]
    assert first.status == 409
    done = await client.put(
        "/api/admin/settings",
        json={"settings": {"registrations_open": False, "max_reports_per_day": 1}, "confirm_token": token},
        headers=boss["headers"],
    )
    assert done.status == 200 and (await done.json())["settings"] == {"registrations_open": False, "max_reports_per_day": 1}

    # registrations_open: signups are refused.
    closed = await client.post("/api/auth/signup", json=signup_body())
    assert closed.status == 403 and (await closed.json())["code"] == "registrations_closed"
    # max_reports_per_day: the second report of the day is refused.
    url = f"/api/users/report/{target['user']['id']}"
    assert (await client.post(url, json={"reason": REASON, "report_type": "other"}, headers=auth(reporter["access_token"]))).status == 201
    assert (await client.post(url, json={"reason": REASON, "report_type": "other"}, headers=auth(reporter["access_token"]))).status == 429
    logs = await (await client.get("/api/admin/audit-logs", params={"action": "settings_update"}, headers=admin["headers"])).json()
    assert len(logs["logs"]) == 1
    assert logs["logs"][0]["before"] == {"registrations_open": True, "max_reports_per_day": 20}
    assert logs["logs"][0]["after"] == {"registrations_open": False, "max_reports_per_day": 1}
