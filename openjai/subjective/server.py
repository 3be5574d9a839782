"""The web app (Starlette, served by uvicorn): DSCQS trials for a session, and the .jai viewer.

```
GET  /                          DSCQS page (static/dscqs.html) or, without a session, the viewer
GET  /api/session               title, grey time, trial counts
POST /api/observers             {"observer": id} → starts (plan stored) or resumes; returns progress
GET  /api/observers/{id}/next   the next unanswered trial, or {"done": true}
GET  /api/trials/{tid}/{A|B}    the trial's image on that side (opaque URL: nothing tells the codec)
POST /api/trials/{tid}          {"score_a": 0-100, "score_b": 0-100} → 200 recorded / already recorded,
                                409 other scores already recorded, 400 invalid
GET  /view, /api/view, /api/view/{i}/{decoded|original}.png      the viewer
```

Every answer is committed to SQLite before the response leaves (store.py), so a page that got
"recorded" can rely on it; a page that got no answer (server killed) retries the same submit,
which is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import OpenJAIError, SessionError
from . import session as sess
from .schedule import check_observer, plan
from .store import ScoreConflict, Store
from .viewer import ViewItem

STATIC = Path(__file__).parent / "static"
_NO_CACHE = {"Cache-Control": "no-store"}


def _error(e: OpenJAIError) -> JSONResponse:
    return JSONResponse({"error": str(e)}, status_code=409 if isinstance(e, ScoreConflict) else 400)


async def _json(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise SessionError("request body must be JSON") from None
    if not isinstance(body, dict):
        raise SessionError("request body must be a JSON object")
    return body


def create_app(session_dir: Path | None = None, view_items: Sequence[ViewItem] = (),
               grey_seconds: float | None = None) -> Starlette:
    """The app for a session folder (DSCQS) and/or .jai files to view."""
    s = sess.load(session_dir) if session_dir is not None else None
    store = Store(Path(session_dir) / sess.RESULTS_DB) if session_dir is not None else None
    if grey_seconds is not None and not 0 <= grey_seconds <= 60:
        raise SessionError(f"grey time {grey_seconds} s must be within 0..60")
    grey = grey_seconds if grey_seconds is not None else (s.grey_seconds if s is not None else 0.0)

    def need_session() -> tuple[sess.Session, Store]:
        if s is None or store is None:
            raise SessionError("this server shows the viewer only: start it with a session folder")
        return s, store

    async def index(request: Request) -> Response:
        if s is None:
            return RedirectResponse("/view")
        return FileResponse(STATIC / "dscqs.html", headers=_NO_CACHE)

    async def viewer_page(request: Request) -> Response:
        return FileResponse(STATIC / "viewer.html", headers=_NO_CACHE)

    async def session_info(request: Request) -> Response:
        try:
            ss, _ = need_session()
        except SessionError as e:
            return _error(e)
        return JSONResponse({"title": ss.title, "grey_seconds": grey, "training": len(ss.training),
                             "test": len(ss.conditions)})

    def _progress(ss: sess.Session, st: Store, observer: str) -> dict:
        trials = st.trials(observer)
        return {"observer": observer, "total": len(trials), "answered": sum(done for _, done in trials),
                "training": len(ss.training)}

    async def start_observer(request: Request) -> Response:
        try:
            ss, st = need_session()
            observer = check_observer((await _json(request)).get("observer"))
            new = st.start(observer, plan(ss, observer), ss.seed)
            return JSONResponse({"new": new, **_progress(ss, st, observer)})
        except OpenJAIError as e:
            return _error(e)

    def next_trial(request: Request) -> Response:
        try:
            ss, st = need_session()
            observer = check_observer(request.path_params["observer"])
            trials = st.trials(observer)
            if not trials:
                raise SessionError(f"observer {observer!r} has not started")
            pending = [t for t, done in trials if not done]
            if not pending:
                return JSONResponse({"done": True, "total": len(trials)}, headers=_NO_CACHE)
            t = pending[0]
            cond = ss.condition(t.condition)
            w, h = ss.image(cond.image).crop[2:]
            n_train = sum(tr.training for tr, _ in trials)
            return JSONResponse({
                "done": False, "trial_id": t.trial_id, "index": t.index, "total": len(trials),
                "training": t.training, "n_training": n_train,
                "position": t.index + 1 if t.training else t.index + 1 - n_train,
                "of": n_train if t.training else len(trials) - n_train,
                "a": f"/api/trials/{t.trial_id}/A", "b": f"/api/trials/{t.trial_id}/B", "width": w, "height": h,
            }, headers=_NO_CACHE)
        except OpenJAIError as e:
            return _error(e)

    def trial_image(request: Request) -> Response:
        try:
            ss, st = need_session()
            side = request.path_params["side"]
            if side not in ("A", "B"):
                raise SessionError("side must be A or B")
            t = st.trial(request.path_params["trial_id"])
            cond = ss.condition(t.condition)
            ref = ss.image(cond.image).file
            file = ref if side == t.ref_side else cond.file
            return FileResponse(Path(session_dir) / file, media_type="image/png", headers=_NO_CACHE)
        except OpenJAIError as e:
            return _error(e)

    async def submit(request: Request) -> Response:
        try:
            _, st = need_session()
            body = await _json(request)
            new = st.submit(request.path_params["trial_id"], body.get("score_a"), body.get("score_b"))
            return JSONResponse({"status": "recorded" if new else "already recorded"})
        except OpenJAIError as e:
            return _error(e)

    def view_list(request: Request) -> Response:
        try:
            return JSONResponse([item.summary() for item in view_items])
        except OpenJAIError as e:
            return _error(e)

    def view_image(request: Request) -> Response:
        i, which = request.path_params["i"], request.path_params["which"]
        if not 0 <= i < len(view_items) or which not in ("decoded", "original"):
            return JSONResponse({"error": "no such image"}, status_code=404)
        try:
            png = view_items[i].data()[f"{which}_png"]
        except OpenJAIError as e:
            return _error(e)
        if png is None:
            return JSONResponse({"error": "no original was given for this file"}, status_code=404)
        return Response(png, media_type="image/png")

    routes = [
        Route("/", index),
        Route("/view", viewer_page),
        Route("/api/session", session_info),
        Route("/api/observers", start_observer, methods=["POST"]),
        Route("/api/observers/{observer}/next", next_trial),
        Route("/api/trials/{trial_id}/{side}", trial_image),
        Route("/api/trials/{trial_id}", submit, methods=["POST"]),
        Route("/api/view", view_list),
        Route("/api/view/{i:int}/{which}.png", view_image),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)


def serve(app: Starlette, host: str, port: int) -> None:
    """Run ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
