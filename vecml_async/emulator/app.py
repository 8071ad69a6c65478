"""The ASGI application: routing, envelopes, limits, authentication and injected faults.

Every API request goes through one pipeline, in this order:

1. count the arrival (for ``max_requests_in_window``; every unknown endpoint name under one
   entry, ``<unknown>``); unknown endpoint -> 404, not POST -> 405;
2. read the body under the size cap (413, or 400 per settings, as plain text), within the
   memory bound of all bodies being read (503 with ``Retry-After``) and the body deadline
   (408); both close the connection;
3. in sink mode, ``add_data_batch`` stops here: counted, answered with a finished job;
4. decode the JSON object (400 when malformed);
5. draw the fault for this request (latency, drop before apply, 500, 503, rate-limit burst);
6. authenticate ``user_api_key`` (401), then take a token from the key's bucket (400, or
   ``rate_limit_status``, with the exact rate-limit text);
7. run the endpoint handler; ``drop_after_apply`` closes the connection after it ran.

``POST /_emulator/inspect`` (also under ``/api``) skips faults and the rate limit and answers
for the caller's key only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from vecml_async.emulator._automl_observed import OBSERVED_AUTOML_HANDLERS
from vecml_async.emulator.automl_handlers import AUTOML_HANDLERS
from vecml_async.emulator.context import Context
from vecml_async.emulator.handlers import HANDLERS, Handler
from vecml_async.emulator.limits import (
    BodyBudget,
    BodyTimeout,
    BodyTooLarge,
    ServerBusy,
    read_body,
)
from vecml_async.emulator.parsing import RequestError, decode_body
from vecml_async.emulator.settings import RATE_LIMIT_TEXT, EmulatorSettings
from vecml_async.emulator.store import fingerprint

__all__ = ["ENDPOINTS", "ConnectionDropped", "build_app", "handler_for"]

log = logging.getLogger("vecml_async.emulator")

ENDPOINTS = {**HANDLERS, **AUTOML_HANDLERS, **OBSERVED_AUTOML_HANDLERS}


def handler_for(name: str, settings: EmulatorSettings) -> Handler | None:
    """The handler of endpoint ``name``; the observed (undocumented) AutoML endpoints only
    when ``settings.observed_endpoints`` is on."""
    if name in OBSERVED_AUTOML_HANDLERS and not settings.observed_endpoints:
        return None
    return ENDPOINTS.get(name)


#: The stats entry every unknown endpoint name is counted under (names are client input).
UNKNOWN_ENDPOINT = "<unknown>"
#: Characters of a client-supplied name shown in a refusal.
_NAME_SHOWN = 100


class ConnectionDropped(Exception):
    """Raised after the response head is sent, so uvicorn aborts the connection."""


class _DropFilter(logging.Filter):
    """Hide uvicorn's traceback for connections the emulator drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


def _install_drop_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropFilter) for f in logger.filters):
        logger.addFilter(_DropFilter())


class _DropResponse(Response):
    """Send a response head promising a body, then abort: the client sees a broken answer."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )
        raise ConnectionDropped


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


class _Api:
    """The request pipeline bound to one :class:`Context`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.reading = BodyBudget(ctx.settings.max_reading_bytes)

    def error(self, status: int, message: str, extra: dict[str, Any] | None = None) -> Response:
        if self.ctx.settings.error_status == "ok":
            status = 200 if status < 500 else status
        return _json({"success": False, "error_message": message, **(extra or {})}, status)

    def refuse(self, err: RequestError, fp: str | None) -> Response:
        self.ctx.stats.reject(err.reason, fp)
        return self.error(err.status, err.message, getattr(err, "extra", None))

    def rate_limited(self) -> Response:
        settings = self.ctx.settings
        status = settings.rate_limit_status
        headers = {}
        if settings.rate_limit_retry_after is not None:
            headers["Retry-After"] = f"{settings.rate_limit_retry_after:g}"
        if settings.rate_limit_body == "json":
            payload = orjson.dumps({"success": False, "error_message": RATE_LIMIT_TEXT})
            return Response(payload, status, headers, media_type="application/json")
        return Response(RATE_LIMIT_TEXT, status, headers, media_type="text/plain")

    async def body(self, request: Request) -> bytes | bytearray | Response:
        """The request body, or the response that refuses it (too large, or abandoned)."""
        settings = self.ctx.settings
        try:
            return await read_body(
                request, settings.max_body_bytes, self.reading, settings.body_timeout
            )
        except ClientDisconnect:
            # Nobody is listening any more; answer nothing rather than log a crash.
            return Response(status_code=400)
        except BodyTooLarge:
            self.ctx.stats.reject("too_large", None)  # the key is in the unread body
            text = f"Request body exceeds {settings.max_body_bytes} bytes"
            return Response(text, status_code=settings.oversize_status, media_type="text/plain")
        except ServerBusy:
            # Not applied, so a retry is always safe; the connection is closed so that the
            # rest of the body is not read.
            self.ctx.stats.reject("busy", None)
            text = "Server busy: too many request bodies being read; retry later"
            headers = {"Retry-After": "1", "Connection": "close"}
            return Response(text, status_code=503, headers=headers, media_type="text/plain")
        except BodyTimeout:
            self.ctx.stats.reject("slow_body", None)
            text = f"Request body not received within {settings.body_timeout:g} s"
            return Response(
                text, status_code=408, headers={"Connection": "close"}, media_type="text/plain"
            )

    async def endpoint(self, request: Request) -> Response:
        ctx = self.ctx
        name = request.path_params["endpoint"]
        handler = handler_for(name, ctx.settings)
        number = ctx.stats.arrival(name if handler is not None else UNKNOWN_ENDPOINT)
        if handler is None:
            shown = name if len(name) <= _NAME_SHOWN else name[:_NAME_SHOWN] + "..."
            return self.refuse(RequestError(404, f"Unknown endpoint /{shown}", "not_found"), None)
        if request.method != "POST":
            return self.refuse(RequestError(405, f"/{name} accepts POST only"), None)
        body = await self.body(request)
        if isinstance(body, Response):
            return body
        if ctx.settings.sink and name == "add_data_batch":
            return await self.sink(name, len(body))
        try:
            fields = decode_body(body)
        except RequestError as err:
            return self.refuse(err, None)
        del body  # the decoded fields are all that is needed from here on
        key = fields.get("user_api_key")
        fp = fingerprint(key) if isinstance(key, str) and key else None
        if fp is not None:
            ctx.stats.identify(number, name, fp)
        fault = await self.fault(name, fp)
        if fault is not None and fault != "drop_after_apply":
            return self.faulted(fault)
        if fp is None or not ctx.settings.key_ok(key):
            return self.refuse(RequestError(401, "Invalid API key", "auth"), fp)
        if not ctx.buckets.allow(fp):
            ctx.stats.reject("rate_limited", fp)
            return self.rate_limited()
        try:
            result = await handler(ctx, ctx.store.tenant(fp), fields)
        except RequestError as err:
            return self.refuse(err, fp)
        except Exception:
            log.exception("the /%s handler crashed", name)
            return self.error(500, f"Internal error in /{name}")
        if fault == "drop_after_apply":
            return _DropResponse()
        return _json({"success": True, **result})

    async def fault(self, name: str, fp: str | None) -> str | None:
        """Draw and count this request's fault; sleep its latency; return its kind."""
        decision = self.ctx.faults.decide(name)
        if decision.delay > 0:
            self.ctx.stats.fault("latency", fp)
            await asyncio.sleep(decision.delay)
        if decision.kind is None or decision.kind == "latency":
            return None
        self.ctx.stats.fault(decision.kind, fp)
        return decision.kind

    def faulted(self, kind: str) -> Response:
        if kind == "drop_before_apply":
            return _DropResponse()
        if kind == "rate_limit":
            return self.rate_limited()
        status = 503 if kind == "error_503" else 500
        text = "Service Unavailable" if status == 503 else "Internal Server Error"
        return _json({"success": False, "error_message": text}, status)

    async def sink(self, name: str, nbytes: int) -> Response:
        self.ctx.stats.sink(nbytes)
        fault = await self.fault(name, None)
        if fault is not None and fault != "drop_after_apply":
            return self.faulted(fault)
        job_id = self.ctx.new_sink_job()
        if fault == "drop_after_apply":
            return _DropResponse()
        return _json({"success": True, "job_id": job_id})

    async def inspect(self, request: Request) -> Response:
        if request.method != "POST":
            return self.error(405, "/_emulator/inspect accepts POST only")
        body = await self.body(request)
        if isinstance(body, Response):
            return body
        try:
            fields = decode_body(body)
        except RequestError as err:
            return self.error(err.status, err.message)
        key = fields.get("user_api_key")
        if not isinstance(key, str) or not self.ctx.settings.key_ok(key):
            return self.error(401, "Invalid API key")
        return _json({"success": True, **inspect_tenant(self.ctx, fingerprint(key))})


def inspect_tenant(ctx: Context, fp: str) -> dict[str, Any]:
    """Everything the emulator knows about one tenant, and nothing about any other."""
    tenant = ctx.store.find(fp)
    data: dict[str, Any] = (
        tenant.describe()
        if tenant is not None
        else {"projects": {}, "jobs": {}, "id_writes": 0, "overwrites": 0}
    )
    return {
        "tenant": fp,
        **ctx.stats.snapshot(fp),
        **data,
        "max_requests_in_1s": ctx.stats.max_in_window(1.0, fp),
    }


def build_app(ctx: Context) -> Starlette:
    """The Starlette application serving ``ctx`` under ``/api``."""
    _install_drop_filter()
    api = _Api(ctx)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(
        routes=[
            Route("/_emulator/inspect", api.inspect, methods=methods),
            Route("/api/_emulator/inspect", api.inspect, methods=methods),
            Route("/api/{endpoint}", api.endpoint, methods=methods),
        ]
    )
