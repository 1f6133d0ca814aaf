"""Serving: an HTTP service with real-time events (FastAPI on uvicorn), its event log and retrieval.

``pip install 'recsys-tf[serve]'`` adds FastAPI, uvicorn, faiss-cpu and the Redis clients.
"""

from recsys_tf.serving.engine import Engine, view_of
from recsys_tf.serving.eventlog import START, Event, EventLog, RedisEventLog, SQLiteEventLog, open_event_log
from recsys_tf.serving.process import ServiceProcess, launch
from recsys_tf.serving.retrieval import Retriever

__all__ = ["START", "Engine", "Event", "EventLog", "RedisEventLog", "Retriever", "SQLiteEventLog", "ServiceProcess",
           "launch", "open_event_log", "view_of"]  # fmt: skip
