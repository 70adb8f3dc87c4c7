"""Webhooks: `/api/v1/webhooks` (admin scope) and the service behind it. Every engine event a webhook
hears is appended to that webhook's journal on disk the moment it is published (hookqueue), then posted
by the webhook's courier (delivery), in order, until the receiver takes it; a restarted daemon resumes
the journals. Each webhook keeps a log of its last deliveries, written with the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from servin.core.events import Event, EventBus
from servin.manage import envelope
from servin.manage.delivery import Courier, Post, Progress, RetryPolicy, http_poster
from servin.manage.hookevents import event_name, hook_event
from servin.manage.hookqueue import Entry, Journal
from servin.manage.hookstore import (DeliveryRecord, Webhook, WebhookStore, checked_events, checked_secret,
                                     checked_url, now_rfc3339)

log = logging.getLogger(__name__)

SAVE_EVERY = 1.0  # seconds: the delivery logs are written at most this often (and at shutdown)


class Webhooks:
    """The store, and per webhook its journal and courier, fed by the bus once `start()`ed."""

    def __init__(self, root: Path, bus: EventBus, *, policy: RetryPolicy | None = None,
                 post: Post | None = None) -> None:
        self.store = WebhookStore(root)
        self.bus = bus
        self.queue_dir = root / "queue"
        self._policy = policy or RetryPolicy()
        self._post = post
        self._lock = threading.Lock()  # the couriers: events arrive in any thread
        self._couriers: dict[str, tuple[Courier, asyncio.Task[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._session: aiohttp.ClientSession | None = None
        self._unlisten: Callable[[], None] | None = None
        self._sync_wanted = asyncio.Event()
        self._save_wanted = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Resume every webhook's journal and hear the bus from now on."""
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        self.queue_dir.mkdir(mode=0o700, exist_ok=True)
        if self._post is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            self._post = http_poster(self._session)
        hooks = self.store.list()
        known = {f"{h.id}.journal" for h in hooks}
        for orphan in self.queue_dir.iterdir():  # a webhook removed by a daemon killed before it unlinked
            if orphan.name not in known:
                orphan.unlink(missing_ok=True)
        for hook in hooks:
            self._open(hook)
            pending = len(self._couriers[hook.id][0].journal.pending())
            if pending:
                log.info("webhook %s: resuming %d pending deliveries to %s", hook.id, pending, hook.url)
        self._tasks = [asyncio.create_task(self._sync_loop()), asyncio.create_task(self._save_loop())]
        self._unlisten = self.bus.listen(self._on_event)

    async def close(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
        with self._lock:
            couriers, self._couriers = list(self._couriers.values()), {}
        for task in [*self._tasks, *(t for _c, t in couriers)]:
            task.cancel()
        for task in [*self._tasks, *(t for _c, t in couriers)]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for courier, _t in couriers:
            await asyncio.to_thread(courier.journal.sync)
            courier.journal.close()
        await asyncio.to_thread(self.store.save)
        if self._session is not None:
            await self._session.close()

    async def add(self, *, url: str, events: tuple[str, ...], secret: str | None) -> Webhook:
        hook = await asyncio.to_thread(self.store.add, url=url, events=events, secret=secret)
        if self._loop is not None:
            self._open(hook)
        return hook

    async def remove(self, hook_id: str) -> None:
        """The webhook and its pending deliveries."""
        await asyncio.to_thread(self.store.remove, hook_id)
        with self._lock:
            courier, task = self._couriers.pop(hook_id, (None, None))
        if courier is not None and task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            courier.journal.destroy()

    def _open(self, hook: Webhook) -> None:
        assert self._post is not None
        journal = Journal(self.queue_dir / f"{hook.id}.journal")
        courier = Courier(url=hook.url, secret=hook.secret, journal=journal, post=self._post, policy=self._policy,
                          progress=lambda p: self._progress(hook.id, p))
        with self._lock:
            self._couriers[hook.id] = (courier, asyncio.create_task(courier.run()))

    def _on_event(self, event: Event) -> None:
        """In the publisher's thread: the entry is written before publish() returns."""
        name = event_name(event)
        if name is None or not (hearing := self.store.hearing(name)):
            return
        he = hook_event(event)
        assert he is not None
        woken = []
        with self._lock:
            for hook in hearing:
                courier = self._couriers.get(hook.id, (None,))[0]
                if courier is None:
                    continue
                courier.journal.append(Entry(id=str(uuid.uuid4()), event=he.name, body=he.body,
                                             enqueued=time.time()))
                woken.append(courier)
        if woken:
            self._soon(lambda: self._woken(woken))

    def _woken(self, couriers: list[Courier]) -> None:
        for courier in couriers:
            courier.wake()
        self._sync_wanted.set()

    def _soon(self, call: Callable[[], None]) -> None:
        if threading.get_ident() == self._loop_thread:
            call()
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(call)

    def _progress(self, hook_id: str, p: Progress) -> None:
        self.store.record(hook_id, DeliveryRecord(
            id=p.entry.id, event=p.entry.event, state=p.state, status_code=p.attempt.status_code,
            attempts=p.attempts, error=p.attempt.error,
            delivered_at=now_rfc3339(p.at) if p.state == "delivered" else None, last_attempt=now_rfc3339(p.at)))
        self._save_wanted.set()
        self._sync_wanted.set()

    async def _sync_loop(self) -> None:
        """fsync the journals written since the last round: one round per wake-up, however many events."""
        while True:
            await self._sync_wanted.wait()
            self._sync_wanted.clear()
            with self._lock:
                journals = [c.journal for c, _t in self._couriers.values()]
            try:
                await asyncio.to_thread(_sync_all, journals)
            except OSError as exc:
                log.error("syncing the webhook journals: %s", exc)

    async def _save_loop(self) -> None:
        while True:
            await self._save_wanted.wait()
            self._save_wanted.clear()
            try:
                await asyncio.to_thread(self.store.save)
            except OSError as exc:
                log.error("writing %s: %s", self.store.path, exc)
            await asyncio.sleep(SAVE_EVERY)


def _sync_all(journals: list[Journal]) -> None:
    for journal in journals:
        journal.sync()


# ---- /api/v1/webhooks --------------------------------------------------------------------------------

WEBHOOKS = web.AppKey("servin.manage.webhooks", Webhooks)


def add_routes(app: web.Application, hooks: Webhooks) -> None:
    app[WEBHOOKS] = hooks
    app.router.add_post("/api/v1/webhooks", _create)
    app.router.add_get("/api/v1/webhooks", _list)
    app.router.add_get("/api/v1/webhooks/{id}", _get)
    app.router.add_delete("/api/v1/webhooks/{id}", _remove)


def hook_json(hooks: Webhooks, hook: Webhook) -> dict[str, Any]:
    """A webhook as the API shows it: never its secret."""
    return {"id": hook.id, "url": hook.url, "events": list(hook.events), "created": hook.created,
            "active": hook.active, "deliveries": [_delivery_json(d) for d in hooks.store.deliveries(hook.id)]}


def _delivery_json(d: DeliveryRecord) -> dict[str, Any]:
    return {"id": d.id, "event": d.event, "state": d.state, "status_code": d.status_code, "attempts": d.attempts,
            "error": d.error, "delivered_at": d.delivered_at, "last_attempt": d.last_attempt}


async def _create(request: web.Request) -> web.Response:
    body = await envelope.json_object(request, allowed=("url", "events", "secret"))
    url, events, secret = checked_url(body.get("url")), checked_events(body.get("events")), \
        checked_secret(body.get("secret"))
    hooks = request.app[WEBHOOKS]
    hook = await hooks.add(url=url, events=events, secret=secret)
    return envelope.ok({**hook_json(hooks, hook), "secret": hook.secret}, status=201)


async def _list(request: web.Request) -> web.Response:
    hooks = request.app[WEBHOOKS]
    return envelope.ok(envelope.paginate(request, [hook_json(hooks, h) for h in hooks.store.list()]))


async def _get(request: web.Request) -> web.Response:
    hooks = request.app[WEBHOOKS]
    return envelope.ok(hook_json(hooks, hooks.store.get(request.match_info["id"])))


async def _remove(request: web.Request) -> web.Response:
    hook_id = request.match_info["id"]
    await request.app[WEBHOOKS].remove(hook_id)
    return envelope.ok({"id": hook_id, "removed": True})
