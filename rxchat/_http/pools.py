"""The ``requests.Session`` a client owns: pools whose connections can be aborted.

`new_session` mounts an adapter whose urllib3 pools, direct and through an
http(s) proxy alike, use the tracked connections of ``abort``; `close_session`
closes every idle pooled socket at once; `draining` counts the streams of a
session that are reading their last bytes before their connection goes back to the
pool.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

import requests
import requests.adapters
import urllib3

from .abort import TrackedHTTPPool, TrackedHTTPSPool

__all__ = ["POOL_MAXSIZE", "Draining", "close_session", "draining", "new_session"]

_TRACKED_POOLS = {"http": TrackedHTTPPool, "https": TrackedHTTPSPool}


class _TrackingAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_TRACKED_POOLS)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        # requests builds one ProxyManager per proxy, with urllib3's default pools.
        manager = super().proxy_manager_for(proxy, **kwargs)
        if isinstance(manager, urllib3.ProxyManager):  # not SOCKS: its own pools
            manager.pool_classes_by_scheme = dict(_TRACKED_POOLS)
        return manager


POOL_MAXSIZE = 100
"""Idle connections kept per host (requests keeps 10). A client shared by more
concurrent streams than its pool holds would discard the extra connections as they
come back, and urllib3 logs "Connection pool is full" for each; more streams than this
still work (new connections are opened), only their reuse is bounded."""


def new_session() -> requests.Session:
    """A ``requests.Session`` whose connections can be aborted before headers arrive,
    keeping up to `POOL_MAXSIZE` idle connections per host."""
    session = requests.Session()
    adapter = _TrackingAdapter(pool_maxsize=POOL_MAXSIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def close_session(session: requests.Session) -> None:
    """Close a session and every idle connection in its pools, now.

    ``Session.close()`` alone only forgets the pools with urllib3 2.x (its pool
    container has no dispose function), so kept-alive sockets stayed open until
    garbage collection; each is closed here, proxy pools included.
    """
    for adapter in {id(a): a for a in session.adapters.values()}.values():
        managers = [getattr(adapter, "poolmanager", None)]
        managers += list(getattr(adapter, "proxy_manager", {}).values())
        for manager in managers:
            pools: Any = getattr(manager, "pools", None)
            for key in list(pools.keys()) if pools is not None else ():
                pool = pools.get(key)
                if pool is not None:
                    with contextlib.suppress(Exception):  # closing must never fail
                        pool.close()
    session.close()


class Draining:
    """The streams of one session reading their last bytes, so that a new request
    can wait for a connection about to come back instead of opening one."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._threads: list[int] = []  # one entry per finishing stream

    def enter(self, token: int | None = None) -> None:
        """A stream starts finishing on this thread (or, with ``token``, on the
        shared reader, named by that token)."""
        with self._changed:
            self._threads.append(threading.get_ident() if token is None else token)

    def leave(self, token: int | None = None) -> None:
        """The stream finishing on this thread (or named ``token``) is done (its
        connection is back in the pool, or closed)."""
        with self._changed:
            self._threads.remove(threading.get_ident() if token is None else token)
            self._changed.notify_all()

    def wait(self, timeout: float) -> None:
        """Wait until no stream is finishing, for at most ``timeout`` seconds; at once
        if this thread is finishing one (a request sent from ``on_completed`` on a
        synchronous scheduler would otherwise wait for itself)."""
        me = threading.get_ident()
        with self._changed:
            self._changed.wait_for(lambda: not self._threads or me in self._threads, timeout)


_drains: weakref.WeakKeyDictionary[requests.Session, Draining] = weakref.WeakKeyDictionary()
_drains_lock = threading.Lock()


def draining(session: requests.Session) -> Draining:
    """The `Draining` count of ``session`` (made on first use)."""
    with _drains_lock:
        draining = _drains.get(session)
        if draining is None:
            draining = _drains[session] = Draining()
        return draining
