"""Profile, preferences, photos, settings and FCM tokens (API.md "Profile, settings, discovery")."""

from __future__ import annotations

import asyncio
from typing import Any

import voluptuous as vol
from aiohttp import BodyPartReader, web

from truebond.adapters import images
from truebond.adapters.ratelimit import Policy
from truebond.adapters.storage import LocalStorage
from truebond.api import answers
from truebond.api.openapi import multipart
from truebond.api.routes_auth import INTENTS, INTERESTS, me_body, min_le_max
from truebond.api.routing import Req, Route, json_response
from truebond.api.shapes import SUCCESS, binary
from truebond.api.validation import integer, strict, text
from truebond.commands import profile
from truebond.commands.location import RecordProfileView
from truebond.commands.profile import (
    RegisterFcmToken,
    RemoveFcmToken,
    UpdatePreferences,
    UpdateProfile,
    UpdateSettings,
    UploadPhoto,
)
from truebond.errors import BadRequest, ImageTooLarge, NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from truebond.projections import ledger as ledger_view
from truebond.projections import presence as presence_view
from truebond.projections import users as users_view

UPLOADS = Policy("photo_upload", "30/hour")
# The multipart envelope around a 5 MiB file: boundaries and part headers.
MULTIPART_OVERHEAD = 64 * 1024
UPLOAD_BODY_LIMIT = images.MAX_BYTES + MULTIPART_OVERHEAD
CHUNK = 64 * 1024
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
NO_CONTROL_BUT_NEWLINES = r"^[^\x00-\x09\x0b\x0c\x0e-\x1f\x7f]*$"
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


PHOTO_FORM = multipart(None, ("file",))
PROFILE_SCHEMA = strict(
    {
        vol.Optional("name"): vol.All(text(2, 50), vol.Match(NO_CONTROL, msg="control characters are not allowed")),
        vol.Optional("bio"): vol.All(text(0, 500), vol.Match(NO_CONTROL_BUT_NEWLINES, msg="control characters are not allowed")),
        vol.Optional("intent"): vol.In(INTENTS),
        vol.Optional("profile_pictures"): vol.All([vol.All(str, vol.Length(min=1, max=500))], vol.Length(max=profile.MAX_PHOTOS)),
    }
)

PREFERENCES_SCHEMA = vol.Schema(
    vol.All(
        strict(
            {
                vol.Optional("interested_in"): vol.In(INTERESTS),
                vol.Optional("min_age"): integer(18, 100),
                vol.Optional("max_age"): integer(18, 100),
                vol.Optional("max_distance_km"): integer(1, 500),
            }
        ),
        min_le_max,
    )
)


def _flags(*names: str) -> dict[Any, Any]:
    return {vol.Optional(name): bool for name in names}


SETTINGS_SCHEMA = strict(
    {
        vol.Optional("notifications"): strict(_flags(*profile.DEFAULT_SETTINGS["notifications"])),
        vol.Optional("privacy"): strict(_flags(*profile.DEFAULT_SETTINGS["privacy"])),
        vol.Optional("safety"): strict(_flags(*profile.DEFAULT_SETTINGS["safety"])),
        vol.Optional("dark_mode"): bool,
        vol.Optional("language"): vol.All(
            str, vol.Match(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$", msg="expected a language code such as en or pt-BR")
        ),
    }
)

FCM_TOKEN = vol.All(text(10, 500), vol.Match(r"^[A-Za-z0-9_:.\-]+$", msg="invalid token"))
FCM_REGISTER_SCHEMA = strict({vol.Required("token"): FCM_TOKEN})
FCM_REMOVE_SCHEMA = strict({vol.Optional("token"): FCM_TOKEN})


def public_body(user: dict[str, Any]) -> dict[str, Any]:
    """What anyone logged in may see of an account: never email, phone, coins, address or location."""
    pictures = [str(u) for u in user.get("profile_pictures", [])]
    return {
        "id": user["_id"],
        "name": user.get("name"),
        "age": user.get("age"),
        "gender": user.get("gender"),
        "bio": user.get("bio", ""),
        "photos": pictures,
        "profile_pictures": list(pictures),
        "intent": user.get("intent"),
        "is_verified": bool(user.get("is_verified", False)),
        # `privacy.show_online` false hides the account's presence from everybody else.
        "is_online": bool(user.get("is_online", False)) and bool(profile.settings_of(user)["privacy"]["show_online"]),
    }


async def get_profile(req: Req) -> web.StreamResponse:
    """GET /api/users/profile/{user_id}: a public profile; unknown, deleted or hidden → 404."""
    viewer, db = req.me.user_id, req.unit.db
    # A shadow-banned account has left everyone else's view (it still sees its own profile).
    user = await users_view.public_profile(db, viewer, req.param("user_id"))
    if user is None:
        raise NotFound("User not found")
    await req.bus.handle(RecordProfileView(req.me.user_id, str(user["_id"])), req.ctx)
    return json_response(public_body(await presence_view.with_online(req.unit, req.me.user_id, user)))


async def update_profile(req: Req) -> web.StreamResponse:
    """PUT /api/users/profile: name, bio, intent and the order/subset of the caller's photos."""
    user = await req.bus.handle(UpdateProfile(req.me.user_id, **req.body), req.ctx)
    coins = await ledger_view.coins(req.unit.db, req.me.user_id)
    return json_response({"message": "Profile updated", "user": me_body(user, coins)})


async def update_preferences(req: Req) -> web.StreamResponse:
    """PUT /api/users/preferences: min_age ≤ max_age after merging with the stored values."""
    preferences = await req.bus.handle(UpdatePreferences(req.me.user_id, **req.body), req.ctx)
    return json_response({"message": "Preferences updated", "preferences": preferences})


async def get_settings(req: Req) -> web.StreamResponse:
    """GET /api/settings: the defaults overlaid with the caller's changes."""
    return json_response({"success": True, "settings": profile.settings_of(await req.account())})


async def update_settings(req: Req) -> web.StreamResponse:
    """POST /api/settings: merge a partial."""
    settings = await req.bus.handle(UpdateSettings(req.me.user_id, req.body), req.ctx)
    return json_response({"success": True, "settings": settings})


async def register_fcm_token(req: Req) -> web.StreamResponse:
    """POST /api/users/fcm-token: store the device token (push delivery is gone; stored only)."""
    await req.bus.handle(RegisterFcmToken(req.me.user_id, req.body["token"]), req.ctx)
    return json_response({"success": True, "message": "Token registered"})


async def remove_fcm_token(req: Req) -> web.StreamResponse:
    """DELETE /api/users/fcm-token: remove that token, or every token when none is given."""
    await req.bus.handle(RemoveFcmToken(req.me.user_id, req.body.get("token")), req.ctx)
    return json_response({"success": True, "message": "Token removed"})


async def read_upload(request: web.Request) -> bytes:
    """The bytes of the multipart field `file`, read in chunks and refused past 5 MiB (413)."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("Expected multipart/form-data with a file field")
    if request.content_length is not None and request.content_length > UPLOAD_BODY_LIMIT:
        raise PayloadTooLarge("The photo is larger than 5 MiB")
    data: bytes | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name != "file" or data is not None:
                raise ValidationFailed(
                    [{"loc": ["body", str(getattr(part, "name", "") or "part")], "msg": "only one field, file, is accepted"}]
                )
            buffer = bytearray()
            while chunk := await part.read_chunk(CHUNK):
                if len(buffer) + len(chunk) > images.MAX_BYTES:
                    raise PayloadTooLarge("The photo is larger than 5 MiB")
                buffer += chunk
            data = bytes(buffer)
    except (ValueError, RuntimeError, AssertionError):
        raise BadRequest("Malformed multipart body") from None
    if not data:
        raise ValidationFailed([{"loc": ["body", "file"], "msg": "required"}])
    return data


async def upload_photo(req: Req) -> web.StreamResponse:
    """POST /api/users/upload-photo: check, re-encode, store and append a photo (409 at 5)."""
    # Refused before the body is read: the caller's account as this request authenticated it.
    profile.ensure_room_for_photo(await req.account())
    data = await read_upload(req.request)
    try:
        image = await images.clean_async(data)
    except images.ImageTooLarge as exc:
        raise ImageTooLarge(exc.reason) from None
    except images.NotAnImage as exc:
        raise UnsupportedMediaType(exc.reason) from None
    added = await req.bus.handle(UploadPhoto(req.me.user_id, image), req.ctx)
    return json_response({"url": added.url, "profile_pictures": added.profile_pictures})


async def media(req: Req) -> web.StreamResponse:
    """GET /media/photos/{name}: dev-only serving of `local` storage (404 with any other provider)."""
    storage = req.unit.storage
    path = storage.path_for_name(req.param("name")) if isinstance(storage, LocalStorage) else None
    if path is None:
        raise NotFound()
    try:
        body = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise NotFound() from None
    response = web.Response(body=body, content_type=MEDIA_TYPES[path.suffix.lstrip(".")])
    # The frontend runs on another origin and must be able to show these images.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


ROUTES = [
    Route(
        "GET",
        "/api/users/profile/{user_id}",
        get_profile,
        auth="user",
        responses={200: answers.PUBLIC},
        errors=(404,),
        summary="A public profile",
        tag="profile",
    ),
    Route(
        "PUT",
        "/api/users/profile",
        update_profile,
        auth="user",
        body=PROFILE_SCHEMA,
        responses={200: answers.PROFILE_UPDATED},
        summary="Edit the caller's profile",
        tag="profile",
    ),
    Route(
        "PUT",
        "/api/users/preferences",
        update_preferences,
        auth="user",
        body=PREFERENCES_SCHEMA,
        responses={200: answers.PREFERENCES},
        summary="Edit match preferences",
        tag="profile",
    ),
    Route(
        "POST",
        "/api/users/upload-photo",
        upload_photo,
        auth="user",
        raw_body=True,
        max_body=UPLOAD_BODY_LIMIT,
        limits=((UPLOADS, "user"),),
        responses={200: answers.PHOTO},
        errors=(400, 409, 415, 422),
        content=PHOTO_FORM,
        summary="Upload a photo (multipart field file; JPEG, PNG or WebP, ≤ 5 MiB, ≤ 4096x4096)",
        tag="profile",
    ),
    Route("GET", "/api/settings", get_settings, auth="user", responses={200: answers.SETTINGS}, summary="App settings", tag="profile"),
    Route(
        "POST",
        "/api/settings",
        update_settings,
        auth="user",
        body=SETTINGS_SCHEMA,
        responses={200: answers.SETTINGS},
        summary="Change app settings",
        tag="profile",
    ),
    Route(
        "POST",
        "/api/users/fcm-token",
        register_fcm_token,
        auth="user",
        body=FCM_REGISTER_SCHEMA,
        responses={200: SUCCESS},
        summary="Store a push token",
        tag="profile",
    ),
    Route(
        "DELETE",
        "/api/users/fcm-token",
        remove_fcm_token,
        auth="user",
        body=FCM_REMOVE_SCHEMA,
        responses={200: SUCCESS},
        summary="Remove push tokens",
        tag="profile",
    ),
    Route(
        "GET",
        "/media/photos/{name}",
        media,
        default_limit=False,
        responses={200: binary(*MEDIA_TYPES.values())},
        errors=(404,),
        summary="Dev-only local photo storage",
        tag="profile",
    ),
]
