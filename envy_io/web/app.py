"""The web monitor's HTTP side: pages, JSON, server-sent events and actions (Starlette).

Everything a page shows comes from the poller's latest snapshot (snapshot.py);
the only share reads made for a request are the ones a person asked for by
clicking: a frame's attempts and log, a thumbnail (read once, then kept in
memory). Actions go through the same functions as the CLI (job_actions.py)
and the same line checker as the shell (lines.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from envy.render.thumbnails import thumb_path
from envy_io import job_actions
from envy_io.errors import EnvyIoError, UsageError
from envy_io.web.access import AccessMiddleware, AccessRule
from envy_io.web.frame_logs import LOG_TAIL_BYTES, attempts_of, parse_log_name, read_tail
from envy_io.web.snapshot import FarmPoller
from envy_io.web.views import Snapshot

KEEPALIVE_S = 15.0
LOG_VIEW_BYTES = 16 * 1024
MAX_THUMB_BYTES = 512 * 1024
THUMB_CACHE_ENTRIES = 4000
MAX_BODY_BYTES = 64 * 1024
_REASON_RE = re.compile(r"^ENVY FAILED: (.*)$", re.MULTILINE)


class NotReady(Exception):
    """No snapshot yet: the poller has not finished its first read of the share."""


class SnapshotHub:
    """The latest snapshot, handed from the poller thread to every open page (one reader, many tabs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self.closed = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._changed = loop, asyncio.Event()

    def publish(self, snapshot: Snapshot) -> None:  # poller thread
        with self._lock:
            self._snapshot = snapshot
        self._notify()

    def close(self) -> None:
        self.closed = True
        self._notify()

    def detach(self) -> None:
        self._loop = None

    def _notify(self) -> None:
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the server's loop has ended: nobody is listening
                pass

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        if changed is not None:
            changed.set()

    def latest(self) -> Snapshot | None:
        with self._lock:
            return self._snapshot

    async def newer_than(self, version: int, timeout: float) -> Snapshot | None:
        """The next snapshot after ``version``, or None after ``timeout`` (event loop thread only)."""
        snap = self.latest()
        if snap is not None and snap.version > version:
            return snap
        assert self._changed is not None
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            return None
        snap = self.latest()
        return snap if snap is not None and snap.version > version else None


class ThumbCache:
    """Thumbnail bytes already read from the share (each is read once per process)."""

    def __init__(self, entries: int = THUMB_CACHE_ENTRIES) -> None:
        self._data: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.entries = entries

    def get(self, key: tuple[str, str]) -> bytes | None:
        with self._lock:
            data = self._data.get(key)
            if data is not None:
                self._data.move_to_end(key)
            return data

    def put(self, key: tuple[str, str], data: bytes) -> None:
        with self._lock:
            self._data[key] = data
            while len(self._data) > self.entries:
                self._data.popitem(last=False)


def static_dir() -> Path:
    return Path(str(resources.files("envy_io.web") / "static"))


def build_app(farm: Any, poller: FarmPoller, hub: SnapshotHub, rule: AccessRule) -> AccessMiddleware:
    """The ASGI app: ``farm`` (envy_io.farm.Farm) is used for actions and on-demand reads only."""
    thumbs = ThumbCache()
    pages = static_dir()

    def page(name: str):  # type: ignore[no-untyped-def]
        async def serve(request: Request) -> Response:
            return FileResponse(pages / name, headers={"Cache-Control": "no-cache"})

        return serve

    def snapshot() -> Snapshot:
        snap = hub.latest()
        if snap is None:
            raise NotReady("the share has not been read yet; try again in a moment")
        return snap

    def known_job(job_id: str) -> dict[str, Any]:
        detail = snapshot().detail_json(job_id)
        if detail is None:
            raise KeyError(job_id)
        return detail

    async def api_snapshot(request: Request) -> Response:
        return JSONResponse(snapshot().summary_json())

    async def api_job(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        poller.watch(job_id)
        try:
            return JSONResponse(known_job(job_id))
        except KeyError:
            return JSONResponse({"error": f"no job {job_id!r} on the share"}, status_code=404)

    async def events(request: Request) -> Response:
        job_id = request.query_params.get("job")

        async def stream() -> AsyncIterator[str]:
            version, items_version = 0, -1
            yield "retry: 2000\n\n"
            while not hub.closed:
                if job_id:
                    poller.watch(job_id)
                snap = await hub.newer_than(version, KEEPALIVE_S)
                if snap is None:
                    yield ": keep-alive\n\n"
                    continue
                version = snap.version
                yield f"event: snapshot\ndata: {json.dumps(snap.summary_json())}\n\n"
                view = snap.job(job_id) if job_id else None
                if view is not None and view.items_version != items_version:
                    items_version = view.items_version
                    yield f"event: job\ndata: {json.dumps(snap.detail_json(view.job.id))}\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    async def body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise UsageError(f"request too large (at most {MAX_BODY_BYTES} bytes)")
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise UsageError("expected a JSON object") from None
        if not isinstance(data, dict):
            raise UsageError("expected a JSON object")
        return data

    async def run_change(request: Request, work) -> Response:  # type: ignore[no-untyped-def]
        try:
            data = await body(request)
            lines = await run_in_threadpool(work, data)
        except EnvyIoError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400 if isinstance(exc, UsageError) else 503)
        except OSError as exc:
            return JSONResponse({"error": f"the share failed: {exc}"}, status_code=503)
        poller.changed()  # read the share again now, so the page shows the effect at once
        return JSONResponse({"ok": True, "lines": lines})

    async def job_action(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if snapshot().job(job_id) is None:
            return JSONResponse({"error": f"no job {job_id!r} on the share"}, status_code=404)

        def work(data: dict[str, Any]) -> list[str]:
            action = data.get("action")
            if not isinstance(action, str):
                raise UsageError(f"give an action: one of {', '.join(job_actions.ACTIONS)}")
            return job_actions.run_action(farm, job_id, action, data.get("value"))

        return await run_change(request, work)

    async def requeue(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if snapshot().job(job_id) is None:
            return JSONResponse({"error": f"no job {job_id!r} on the share"}, status_code=404)

        def work(data: dict[str, Any]) -> list[str]:
            items = data.get("items")
            if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
                raise UsageError("select one or more finished or failed frames to requeue")
            return job_actions.reset(farm, job_id, ["failed", "done"], items=items)

        return await run_change(request, work)

    async def send_command(request: Request) -> Response:
        def work(data: dict[str, Any]) -> list[str]:
            return send_lines(farm, data.get("hosts"), data.get("command"))

        return await run_change(request, work)

    async def item(request: Request) -> Response:
        """A frame's attempts (host, time, reason), listed when someone opens it."""
        job_id, name = request.path_params["job_id"], request.path_params["name"]
        try:
            detail = known_job(job_id)
        except KeyError:
            return JSONResponse({"error": f"no job {job_id!r}"}, status_code=404)
        entry = next((i for i in detail["items"] if i["name"] == name), None)
        if entry is None:
            return JSONResponse({"error": f"no frame {name!r} in this job"}, status_code=404)
        return JSONResponse({**entry, "attempts": await run_in_threadpool(read_attempts, farm, job_id, entry["base"])})

    async def frame_log(request: Request) -> Response:
        job_id, log_name = request.path_params["job_id"], request.path_params["log"]
        try:
            detail = known_job(job_id)
        except KeyError:
            return PlainTextResponse("no such job", status_code=404)
        parsed = parse_log_name(log_name)
        if parsed is None or parsed[0].casefold() not in {i["base"].casefold() for i in detail["items"]}:
            return PlainTextResponse("no such log", status_code=404)
        path = farm.layout.jobs_dir / job_id / "logs" / log_name
        try:
            data = await run_in_threadpool(read_tail, path, LOG_VIEW_BYTES)
        except OSError:
            return PlainTextResponse("(no log yet)", status_code=404)
        return PlainTextResponse(data.decode("utf-8", "replace"), headers={"Cache-Control": "no-store"})

    async def thumbnail(request: Request) -> Response:
        job_id, base = request.path_params["job_id"], request.path_params["base"]
        try:
            detail = known_job(job_id)
        except KeyError:
            return Response(status_code=404)
        entry = next((i for i in detail["items"] if i["base"] == base and i["thumb"]), None)
        if entry is None:
            return Response(status_code=404)
        key = (job_id, f"{base}:{entry['host']}")  # a re-render by another host is a new picture
        data = thumbs.get(key)
        if data is None:
            path = thumb_path(farm.layout, job_id, base)
            try:
                data = await run_in_threadpool(_read_small, farm, path)
            except OSError:
                return Response(status_code=404)
            thumbs.put(key, data)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub.attach(asyncio.get_running_loop())
        yield
        hub.close()
        hub.detach()

    routes = [
        Route("/", page("jobs.html")),
        Route("/job/{job_id}", page("job.html")),
        Route("/hosts", page("hosts.html")),
        Route("/api/snapshot", api_snapshot),
        Route("/api/events", events),
        Route("/api/jobs/{job_id}", api_job),
        Route("/api/jobs/{job_id}/action", job_action, methods=["POST"]),
        Route("/api/jobs/{job_id}/requeue", requeue, methods=["POST"]),
        Route("/api/jobs/{job_id}/items/{name}", item),
        Route("/api/jobs/{job_id}/logs/{log}", frame_log),
        Route("/api/hosts/send", send_command, methods=["POST"]),
        Route("/thumbs/{job_id}/{base}.jpg", thumbnail),
        Mount("/static", StaticFiles(directory=str(pages)), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={NotReady: _not_ready})
    return AccessMiddleware(app, rule)


async def _not_ready(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=503)


def _read_small(farm: Any, path: Path) -> bytes:
    """A thumbnail from the share: a regular file of bounded size, never a link out of it (§1.12)."""
    if path.is_symlink():
        raise OSError(f"{path.name} is a link, not a thumbnail")
    if farm.fs.stat(path).st_size > MAX_THUMB_BYTES:
        raise OSError(f"{path.name} is too large for a thumbnail")
    data = farm.fs.read_bytes(path)
    if len(data) > MAX_THUMB_BYTES:
        raise OSError(f"{path.name} grew too large for a thumbnail")
    return data


def send_lines(farm: Any, hosts: object, command: object) -> list[str]:
    """Send ``command`` to each selected host, or a whole ``SELECTOR COMMAND`` line when none is selected.

    Every line is checked by the shell's own checker before anything is
    written; the first problem is the error, worded as the shell words it.
    """
    if not isinstance(command, str) or not command.strip():
        raise UsageError("type a command, e.g. print('hi') or render()")
    if hosts in (None, []):
        lines = [command.strip()]
    elif isinstance(hosts, list) and all(isinstance(h, str) and re.fullmatch(r"[\w.-]{1,100}", h) for h in hosts):
        lines = [f"{h} {command.strip()}" for h in hosts]
    else:
        raise UsageError("hosts must be a list of host names")
    checked = [farm.checker.instruction(line) for line in lines]
    result = farm.send(checked)
    return [f"sent {ins.id}: {ins.text}" for ins in result.sent]


def read_attempts(farm: Any, job_id: str, base: str) -> list[dict[str, Any]]:
    logs = farm.layout.jobs_dir / job_id / "logs"
    try:
        names = farm.fs.listdir(logs)
    except OSError:
        return []
    found = []
    for attempt in attempts_of(base, names):
        path = logs / attempt.log
        try:
            info = farm.fs.stat(path)
            tail = read_tail(path, LOG_TAIL_BYTES).decode("utf-8", "replace")
        except OSError:
            continue
        reasons = _REASON_RE.findall(tail)
        found.append(
            {
                "host": attempt.host,
                "attempt": attempt.attempt,
                "log": attempt.log,
                "modified": info.st_mtime,
                "size": info.st_size,
                "reason": reasons[-1] if reasons else "",
            }
        )
    return found
