"""Admin: moderation queue, audit log, analytics and platform settings (API.md "Admin")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import voluptuous as vol
from aiohttp import web

from truebond.api import answers_admin
from truebond.api.admin_confirm import confirmed
from truebond.api.routing import Req, Route, json_response
from truebond.api.validation import integer, query_int, strict, text
from truebond.clock import to_ms
from truebond.commands.admin import ResolveReport, UpdatePlatformSettings
from truebond.commands.admin.moderation import Decision
from truebond.projections import analytics, platform_settings
from truebond.projections import audit as audit_view
from truebond.projections import safety as safety_view
from truebond.projections.safety import REPORT_STATUSES, REPORT_TYPES

TOKEN = vol.All(str, vol.Length(min=1, max=128))


def _when(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise vol.Invalid("expected an ISO 8601 time") from None
    return to_ms(parsed)


_when.openapi = {"type": "string", "format": "date-time"}  # type: ignore[attr-defined]

PAGE = {vol.Optional("page", default=1): query_int(1, 10_000), vol.Optional("limit", default=20): query_int(1, 100)}
REPORTS_QUERY = strict(
    {**PAGE, vol.Optional("status"): vol.In(("", *REPORT_STATUSES)), vol.Optional("report_type"): vol.In(("", *REPORT_TYPES))}
)
RESOLVE_BODY = strict({vol.Optional("reason"): text(0, 500), vol.Optional("confirm_token"): TOKEN})
AUDIT_QUERY = strict(
    {
        **PAGE,
        vol.Optional("actor"): vol.All(str, vol.Length(max=80)),
        vol.Optional("action"): vol.All(str, vol.Length(max=40)),
        vol.Optional("from"): _when,
        vol.Optional("to"): _when,
    }
)
PERIOD_QUERY = strict({vol.Optional("period", default="month"): vol.In(list(analytics.PERIODS))})
SETTINGS_FIELDS = {
    vol.Optional("registrations_open"): bool,
    vol.Optional("max_reports_per_day"): integer(1, 1000),
}
SETTINGS_BODY = strict(
    {
        vol.Optional("settings"): strict(SETTINGS_FIELDS),
        **SETTINGS_FIELDS,
        vol.Optional("reason"): text(0, 500),
        vol.Optional("confirm_token"): TOKEN,
    }
)


def _page_body(key: str, docs: list[dict[str, Any]], total: int, page: int, limit: int) -> dict[str, Any]:
    return {key: docs, "total": total, "page": page, "limit": limit, "pages": (total + limit - 1) // limit}


def _report_body(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": doc["_id"], **{k: v for k, v in doc.items() if k not in ("_id", "_applied")}}


async def list_reports(req: Req) -> web.StreamResponse:
    """GET /api/admin/moderation/reports: newest first, by status and type."""
    q = req.query
    docs, total = await safety_view.reports_page(
        req.unit.db, status=q.get("status") or None, report_type=q.get("report_type") or None, page=q["page"], limit=q["limit"]
    )
    return json_response(_page_body("reports", [_report_body(d) for d in docs], total, q["page"], q["limit"]))


async def report_stats(req: Req) -> web.StreamResponse:
    """GET /api/admin/moderation/stats."""
    stats = await safety_view.report_stats(req.unit.db)
    return json_response({**stats, "pending": stats["by_status"]["pending"]})


def _resolver(decision: Decision, destructive: bool) -> Any:
    async def handle(req: Req) -> web.StreamResponse:
        report_id = req.param("report_id")
        if destructive:
            await confirmed(req, f"moderation_{decision}", report_id)
        reason = str((req.body or {}).get("reason", ""))
        status = await req.bus.handle(ResolveReport(report_id, decision, req.me.role, reason), req.ctx)
        return json_response({"success": True, "report_id": report_id, "status": status})

    handle.__name__ = f"moderation_{decision}"
    handle.__doc__ = f"POST /api/admin/moderation/reports/{{id}}/{decision}."
    return handle


async def audit_logs(req: Req) -> web.StreamResponse:
    """GET /api/admin/audit-logs: newest first, by actor, action and time."""
    q = req.query
    docs, total = await audit_view.page(
        req.unit.db,
        actor=q.get("actor") or None,
        action=q.get("action") or None,
        since=q.get("from"),
        until=q.get("to"),
        page=q["page"],
        limit=q["limit"],
    )
    logs = [{"id": d["_id"], **{k: v for k, v in d.items() if k != "_id"}, "created_at": d.get("createdAt")} for d in docs]
    return json_response(_page_body("logs", logs, total, q["page"], q["limit"]))


def _analytics(name: str) -> Any:
    async def handle(req: Req) -> web.StreamResponse:
        db, now, days = req.unit.db, req.unit.clock.now(), analytics.days_of(req.query["period"])
        if name == "overview":
            body = await analytics.overview(db, now)
        elif name == "demographics":
            body = await analytics.demographics(db)
        else:
            body = await getattr(analytics, name.replace("-", "_"))(db, now, days)
        return json_response(body)

    handle.__name__ = f"analytics_{name.replace('-', '_')}"
    handle.__doc__ = f"GET /api/admin/analytics/{name}."
    return handle


async def get_settings(req: Req) -> web.StreamResponse:
    """GET /api/admin/settings: every enforced setting in force."""
    return json_response({"settings": await platform_settings.current(req.unit.db)})


async def put_settings(req: Req) -> web.StreamResponse:
    """PUT /api/admin/settings (super, two-step): only enforced settings; anything else 422."""
    body = dict(req.body)
    changes = {**body.pop("settings", {}), **{k: v for k, v in body.items() if k not in ("reason", "confirm_token")}}
    await confirmed(req, "settings_update", "settings")
    settings = await req.bus.handle(UpdatePlatformSettings(changes, str(body.get("reason", ""))), req.ctx)
    return json_response({"success": True, "settings": settings})


REPORTS_PATH = "/api/admin/moderation/reports/{report_id}"
ROUTES = [
    Route(
        "GET",
        "/api/admin/moderation/reports",
        list_reports,
        auth="admin",
        query=REPORTS_QUERY,
        responses={200: answers_admin.REPORTS},
        summary="The moderation queue",
        tag="admin",
    ),
    Route(
        "GET",
        "/api/admin/moderation/stats",
        report_stats,
        auth="admin",
        responses={200: answers_admin.REPORT_STATS},
        summary="Report counts",
        tag="admin",
    ),
    Route(
        "POST",
        f"{REPORTS_PATH}/approve",
        _resolver("approve", False),
        auth="admin",
        body=RESOLVE_BODY,
        responses={200: answers_admin.RESOLVED},
        errors=(404, 409),
        summary="Close a report, no action",
        tag="admin",
    ),
    Route(
        "POST",
        f"{REPORTS_PATH}/remove",
        _resolver("remove", True),
        auth="admin",
        body=RESOLVE_BODY,
        responses={200: answers_admin.RESOLVED},
        errors=(404, 409),
        params=(answers_admin.CONFIRM_HEADER,),
        summary="Take the reported bio and photos down (confirm_token)",
        tag="admin",
    ),
    Route(
        "POST",
        f"{REPORTS_PATH}/ban",
        _resolver("ban", True),
        auth="super",
        body=RESOLVE_BODY,
        responses={200: answers_admin.RESOLVED},
        errors=(404, 409),
        params=(answers_admin.CONFIRM_HEADER,),
        summary="Ban the reported account (super admin, confirm_token)",
        tag="admin",
    ),
    Route(
        "GET",
        "/api/admin/audit-logs",
        audit_logs,
        auth="admin",
        query=AUDIT_QUERY,
        responses={200: answers_admin.AUDIT},
        summary="The audit log, newest first",
        tag="admin",
    ),
    *[
        Route(
            "GET",
            f"/api/admin/analytics/{name}",
            _analytics(name),
            auth="admin",
            query=PERIOD_QUERY,
            responses={200: answers_admin.ANALYTICS[name]},
            summary=f"Analytics: {name}",
            tag="admin",
        )
        for name in ("overview", "user-growth", "demographics", "revenue", "activity", "highlights")
    ],
    Route(
        "GET",
        "/api/admin/settings",
        get_settings,
        auth="super",
        responses={200: answers_admin.SETTINGS},
        summary="Platform settings",
        tag="admin",
    ),
    Route(
        "PUT",
        "/api/admin/settings",
        put_settings,
        auth="super",
        body=SETTINGS_BODY,
        responses={200: answers_admin.SETTINGS_CHANGED},
        errors=(409,),
        params=(answers_admin.CONFIRM_HEADER,),
        summary="Change platform settings (super admin, confirm_token)",
        tag="admin",
    ),
]
