"""The FastAPI application of ``fastleaf serve``.

    GET  /          the page: drop or pick a photo, see the top species
    GET  /health    {"status": "ok", "model": ..., "classes": N}
    GET  /classes   {"classes": [...]}
    POST /predict   body: the image file's bytes -> {"top": [{"species", "probability"}, ...]}

    curl --data-binary @leaf.jpg http://127.0.0.1:8000/predict

A bad upload is a 4xx with ``{"error": "<one line>"}`` and the server carries on: an empty
body or a file that is not a readable image (damaged, truncated) 400, a body above the size
limit or an image above the pixel limit (a decompression bomb) 413.
"""
# no ``from __future__ import annotations``: FastAPI reads the endpoint's ``Request``
# annotation at runtime, and fastapi is imported inside create_app (an optional extra)
from ..data.imageio import ImageDecodeError, ImageTooLarge
from ..errors import FastleafError, MissingExtra
from . import ServeSettings
from .page import PAGE
from .predictor import classify


def import_fastapi():
    try:
        import fastapi
        import starlette.concurrency
    except ImportError:
        raise MissingExtra("serve", "fastapi") from None
    return fastapi, starlette.concurrency


class UploadRefused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


# an upload over the limit is read on (and dropped) up to this much more before the 413:
# closing a socket with unread data resets it, and the client may then never see the answer
DRAIN_BYTES = 64 * 1024 * 1024


async def read_body(request, limit: int) -> bytes:
    """The request body; above ``limit`` bytes it is discarded and refused (413)."""
    declared = request.headers.get("content-length", "")
    too_big = UploadRefused(413, f"upload is above the limit of {limit:,} bytes "
                                 f"(fastleaf serve --max-upload-mb)")
    if declared.isdigit() and int(declared) > limit + DRAIN_BYTES:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > limit + DRAIN_BYTES:
            break
    if size > limit:
        raise too_big
    if not size:
        raise UploadRefused(400, "empty upload: send the image file's bytes as the body")
    return b"".join(chunks)


def answer(predictor, data: bytes, top: int) -> dict:
    """The JSON answer for one photo; bad images become :class:`UploadRefused`."""
    try:
        best = classify(predictor, data, top)
    except ImageTooLarge as err:
        raise UploadRefused(413, str(err).splitlines()[0]) from None
    except (ImageDecodeError, FastleafError) as err:
        raise UploadRefused(400, str(err).splitlines()[0]) from None
    return {"model": predictor.info.model_name,
            "top": [{"species": s, "probability": round(p, 6)} for s, p in best]}


def create_app(predictor, settings: ServeSettings | None = None):
    """The application serving ``predictor`` (see :mod:`.predictor`)."""
    settings = settings or ServeSettings()
    fastapi, concurrency = import_fastapi()
    from fastapi.responses import HTMLResponse, JSONResponse

    app = fastapi.FastAPI(title="fastleaf", docs_url=None, redoc_url=None)
    info = predictor.info

    @app.exception_handler(UploadRefused)
    async def refused(request, err: UploadRefused):
        return JSONResponse({"error": str(err)}, status_code=err.status)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return PAGE

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": info.model_name, "classes": len(info.classes)}

    @app.get("/classes")
    async def classes():
        return {"classes": info.classes}

    @app.post("/predict")
    async def predict(request: fastapi.Request):
        data = await read_body(request, settings.max_upload_bytes)
        # decoding and the forward pass run off the event loop, so /health stays answered
        return await concurrency.run_in_threadpool(answer, predictor, data, settings.top)

    return app


def serve(model: str, settings: ServeSettings | None = None) -> None:
    """Load ``model`` and serve it until interrupted."""
    settings = settings or ServeSettings()
    import_fastapi()
    try:
        import uvicorn
    except ImportError:
        raise MissingExtra("serve", "uvicorn") from None
    from .predictor import load_predictor

    app = create_app(load_predictor(model), settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
