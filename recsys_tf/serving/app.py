"""The HTTP service (FastAPI): recommendations, real-time events, health, metrics, hot model reload.

    GET  /recommend?user=U&k=10[&rerank=mmr&lam=0.5]   a shopper's top-k (their events included)
    POST /recommend {"history": [item, ...], "k": 10}  an anonymous session's top-k
    POST /events {"events": [{"user", "item", "event", "ts"}]}
                                                       logged durably, then applied: the very next
                                                       /recommend of that shopper reflects them
    GET  /users/{user}/events                          the events applied since the model's snapshot
    POST /admin/reload {"model": PATH, "since": CURSOR} load a new model version without downtime
    GET  /health, GET /metrics                          status (JSON), Prometheus counters and latencies

Start it with ``recsys-tf serve --model PATH`` (:mod:`recsys_tf.cli`) or
:func:`recsys_tf.serving.launch` (a subprocess on a free loopback port). Bad requests get a 4xx with
an ``error`` that says what is wrong; an unknown shopper gets popular items, and the response says
so (``strategy``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field, StrictInt, StrictStr

from recsys_tf.errors import DataError
from recsys_tf.serving.engine import Engine
from recsys_tf.serving.eventlog import START, Event, EventLog, now, open_event_log

log = logging.getLogger("recsys_tf.serving")
Id = StrictStr | StrictInt


class EventIn(BaseModel):
    user: Id
    item: Id
    event: Literal["view", "click", "cart", "purchase"] = "view"
    ts: float | None = Field(None, description="seconds since 1970; the service's clock when left out")


class EventsIn(BaseModel):
    events: list[EventIn] = Field(min_length=1, max_length=1000)


class SessionIn(BaseModel):
    history: list[Id] = Field(max_length=1000, description="item ids, oldest first")
    k: int = Field(10, ge=1)
    rerank: Literal["none", "mmr"] = "none"
    lam: float = Field(0.5, ge=0.0, le=1.0)


class ReloadIn(BaseModel):
    model: str
    since: str | None = Field(None, description="log cursor the new model was trained up to (default: the same as "
                                                "the serving model's, so every event since then is applied to it too)")


class Metrics:
    """Request counts by (path, status) and latency histograms by path, in Prometheus' text format."""

    buckets_ms = (1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 5000)

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self.hist: dict[str, np.ndarray] = {}
        self.sums: dict[str, float] = {}
        self.started = time.time()

    def observe(self, path: str, status: int, ms: float) -> None:
        self.counts[path, status] = self.counts.get((path, status), 0) + 1
        h = self.hist.setdefault(path, np.zeros(len(self.buckets_ms) + 1, np.int64))
        h[np.searchsorted(self.buckets_ms, ms)] += 1
        self.sums[path] = self.sums.get(path, 0.0) + ms / 1000

    def text(self, service: Service) -> str:
        lines = ["# TYPE recsys_requests_total counter"]
        lines += [f'recsys_requests_total{{path="{p}",status="{s}"}} {n}' for (p, s), n in sorted(self.counts.items())]
        lines.append("# TYPE recsys_request_seconds histogram")
        for p, h in sorted(self.hist.items()):
            cum = np.cumsum(h)
            lines += [f'recsys_request_seconds_bucket{{path="{p}",le="{b / 1000:g}"}} {c}' for b, c in zip(self.buckets_ms, cum)]
            lines += [f'recsys_request_seconds_bucket{{path="{p}",le="+Inf"}} {cum[-1]}',
                      f'recsys_request_seconds_sum{{path="{p}"}} {self.sums[p]:.6f}', f'recsys_request_seconds_count{{path="{p}"}} {cum[-1]}']  # fmt: skip
        e = service.engine
        lines += ["# TYPE recsys_events_applied_total counter", f"recsys_events_applied_total {e.n_events}",
                  "# TYPE recsys_events_skipped_total counter", f"recsys_events_skipped_total {e.skipped_events}",
                  "# TYPE recsys_model_version gauge", f"recsys_model_version {e.version}",
                  "# TYPE recsys_uptime_seconds gauge", f"recsys_uptime_seconds {time.time() - self.started:.1f}"]  # fmt: skip
        return "\n".join(lines) + "\n"


class Service:
    """The engine (swapped whole on reload), the event log, and the lock that keeps log order = apply order."""

    def __init__(self, model: str | Path, events: str | Path, since: str = START, retrieval: str = "hnsw",
                 max_k: int = 100, reg: float = 1.0) -> None:  # fmt: skip
        self.retrieval, self.max_k, self.reg = retrieval, max_k, reg
        self.log: EventLog = open_event_log(events)
        self.engine = self._build(model, since, version=1)
        self.engine.apply(self.log.read(self.engine.cursor))  # replay what the snapshot does not hold
        self.lock = asyncio.Lock()
        self.metrics = Metrics()

    def _build(self, model: str | Path, since: str, version: int) -> Engine:
        from recsys_tf.models import Recommender

        engine = Engine(Recommender.load(model), retrieval=self.retrieval, reg=self.reg, max_k=self.max_k,
                        version=version, source=str(model))  # fmt: skip
        engine.cursor = engine.snapshot = since
        return engine

    async def add_events(self, events: list[Event]) -> str:
        async with self.lock:
            checked = self.engine.check(events)  # unknown items: 400 before anything is written
            cursor = await asyncio.to_thread(self.log.append, checked)  # durable before we answer
            self.engine.apply(self.log.read(self.engine.cursor))  # ours, and anything logged by another writer
            return cursor

    async def reload(self, model: str, since: str | None) -> Engine:
        """Build the new version beside the old one (which keeps answering), replay, then swap."""
        start = self.engine.snapshot if since is None else since
        new = await asyncio.to_thread(self._build, model, start, self.engine.version + 1)
        await asyncio.to_thread(lambda: new.apply(self.log.read(new.cursor)))
        async with self.lock:  # events that came in meanwhile, then the swap: nothing is lost between versions
            new.apply(self.log.read(new.cursor))
            self.engine = new
        return new

    def health(self) -> dict[str, Any]:
        e = self.engine
        return {"status": "ok", "model": e.source, "model_class": type(e.model).__name__, "model_version": e.version,
                "n_users": e.model.n_users, "n_items": e.model.n_items, "retrieval": e.retriever.kind,
                "events_log": self.log.url, "snapshot": e.snapshot, "cursor": e.cursor, "events_applied": e.n_events,
                "events_skipped": e.skipped_events, "uptime_s": round(time.time() - self.metrics.started, 1)}  # fmt: skip


def create_app(model: str | Path, events: str | Path = "build/serve/events.db", since: str = START,
               retrieval: str = "hnsw", max_k: int = 100, reg: float = 1.0) -> FastAPI:  # fmt: skip
    """The FastAPI application serving ``model`` (a folder written by ``Recommender.save``).

    ``events``: the event log (see :func:`~recsys_tf.serving.eventlog.open_event_log`); ``since``: the
    log cursor the model was trained up to -- every later event is replayed on start.
    """
    state: dict[str, Service] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["s"] = Service(model, events, since, retrieval, max_k, reg)
        # TensorFlow and the model leave millions of long-lived objects: without this, every full garbage
        # collection walks them all and stalls the requests in flight for ~0.3 s (the p99 at 32 clients)
        gc.collect()
        gc.freeze()
        log.info("serving %s (%s items), events %s", model, state["s"].engine.model.n_items, state["s"].log.url)
        yield
        state["s"].log.close()

    app = FastAPI(title="recsys-tf", lifespan=lifespan)

    @app.middleware("http")
    async def timing(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        state["s"].metrics.observe(f"{request.method} {getattr(route, 'path', 'other')}", response.status_code, (time.perf_counter() - t0) * 1000)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"error": f"malformed JSON body: {errors[0].get('ctx', {}).get('error', 'cannot parse')}; "
                                          f"send a JSON object, e.g. {_EXAMPLES.get(request.url.path, '{}')}"}, 400)  # fmt: skip
        parts = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors]
        return JSONResponse({"error": "; ".join(parts)}, 422)

    @app.exception_handler(DataError)
    async def bad_data(request: Request, exc: DataError):
        return JSONResponse({"error": str(exc)}, 400)

    @app.get("/recommend")
    async def recommend(user: str = Query(..., min_length=1), k: int = Query(10, ge=1, le=max_k),
                        rerank: Literal["none", "mmr"] = "none", lam: float = Query(0.5, ge=0.0, le=1.0)):  # fmt: skip
        e = state["s"].engine
        out = e.recommend(user=user, k=k, rerank=rerank, lam=lam)
        return {"user": e.user_key(user), "k": k, **out, "n_events": len(e.events_of(user)), "model_version": e.version}

    @app.post("/recommend")
    async def recommend_session(body: SessionIn):
        e = state["s"].engine
        if body.k > max_k:
            raise DataError(f"k={body.k} is above this service's limit of {max_k}.")
        return {"k": body.k, **e.recommend(history=body.history, k=body.k, rerank=body.rerank, lam=body.lam), "model_version": e.version}

    @app.post("/events")
    async def add_events(body: EventsIn):
        t = now()
        events = [Event(x.user, x.item, x.event, t if x.ts is None else x.ts) for x in body.events]
        cursor = await state["s"].add_events(events)
        return {"accepted": len(events), "cursor": cursor}

    @app.get("/users/{user}/events")
    async def user_events(user: str):
        e = state["s"].engine
        return {"user": e.user_key(user), "items": e.events_of(user), "cursor": e.cursor}

    @app.post("/admin/reload")
    async def reload(body: ReloadIn):
        try:
            new = await state["s"].reload(body.model, body.since)
        except (FileNotFoundError, DataError) as exc:
            raise DataError(f"model {body.model!r} not loaded, the previous version keeps serving: {exc}") from exc
        return {"model_version": new.version, "model": new.source, "cursor": new.cursor}

    @app.get("/health")
    async def health():
        return state["s"].health()

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(state["s"].metrics.text(state["s"]))

    return app


_EXAMPLES = {
    "/events": '{"events": [{"user": 7, "item": 42, "event": "click"}]}',
    "/recommend": '{"history": [42, 17], "k": 10}',
    "/admin/reload": '{"model": "build/models/mf-v2"}',
}
