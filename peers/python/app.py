"""The Python peer receiver's FastAPI application: the webhook route reads the raw body (at most
1 MiB), verifies it with verify.py and keeps verified events in this process's memory.

Configured from the environment, so that every uvicorn worker process builds the same app:
DIDIT_WEBHOOK_SECRET (required) and DIDIT_ACCEPT_SIMPLE=1 (accept X-Signature-Simple).
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from verify import TOLERANCE_SECS, Rejection, Store, Verifier

WEBHOOK_PATH = "/webhooks/didit"
MAX_BODY = 1 << 20

_secret = os.environ.get("DIDIT_WEBHOOK_SECRET")
if not _secret:
    raise SystemExit("DIDIT_WEBHOOK_SECRET is not set: export the destination secret Didit gave you")

verifier = Verifier(_secret, accept_simple=os.environ.get("DIDIT_ACCEPT_SIMPLE") == "1")
store = Store(window_secs=2 * TOLERANCE_SECS)

# No OpenAPI or docs pages: a webhook endpoint serves Didit, not browsers.
app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


@app.exception_handler(StarletteHTTPException)
async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    return _error(exc.status_code, reason, exc.headers)


@app.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@app.post(WEBHOOK_PATH)
async def didit_webhook(request: Request) -> JSONResponse:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        # Refused before reading; uvicorn discards the rest of the body it receives.
        return _error(413, "payload_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:  # a chunked body has no declared length
            return _error(413, "payload_too_large")
    try:
        verified = verifier.verify(request.headers, bytes(body))
    except Rejection as r:
        return _error(r.status, r.reason)
    if store.accept(verified):
        return JSONResponse({"status": "accepted"})
    return JSONResponse({"status": "duplicate"})
