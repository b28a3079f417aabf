"""Batched Celery tasks: the ``gpu`` queue's worker gathers jobs and runs them as one call.

A task declared with ``base=GpuBatches`` receives a list of :class:`BatchRequest` (one per
message, each with the message's ``args``) instead of one message's arguments. The worker keeps
the messages it receives in a buffer and runs the task when the buffer holds
``VIGIL_GPU_BATCH_SIZE`` messages, or ``VIGIL_GPU_BATCH_WAIT_SECONDS`` after the first one
arrived, whichever comes first. Producers publish one message per job, as usual.

Adapted from celery-batches 0.11 (``celery_batches.Batches``; BSD-3-Clause, (c) Patrick Cloke &
contributors, Percipient Networks, Ask Solem & contributors). The package itself cannot be
installed next to this project's celery 5.7.0: 0.11 declares ``celery<5.7``. What differs from
it, on purpose (see ``docs/batching.md``):

- The batch runs with the task's ``time_limit`` / ``soft_time_limit`` (celery-batches hands the
  pool no limits, so a stuck batch would hold the worker forever).
- Acknowledgement (the tasks are ``acks_late``): every message of a batch that returned is
  acknowledged; every message of a batch that raised, hit its hard time limit or lost its worker
  process is rejected *without* requeue. celery-batches acknowledges a batch that raised and
  leaves the messages of a lost or killed batch unacknowledged, which fills the worker's prefetch
  window until the worker stops taking messages. Requeueing instead could loop a poison batch
  forever (kombu's filesystem transport never marks a message redelivered, so "requeue once"
  cannot be told apart from "requeue always"). The work a dropped message stood for is found
  again in the database: :func:`screening.services.scoring.scoring_jobs_reap` (beat, every
  minute) re-sends scoring work whose analysis is missing once its cooldown has passed.
- ETA and countdown messages run with the next batch (no producer of the gpu queue sets them).
- The worker needs a prefetch window of at least the batch size: with Celery's
  ``worker_prefetch_multiplier = 1`` a worker holds one unacknowledged message and every batch
  has one job. Run the gpu worker with ``--prefetch-multiplier`` >= ``VIGIL_GPU_BATCH_SIZE``.

Eager calls (``apply``, ``task_always_eager``) run a batch of one at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import traceback
from collections.abc import Callable, Sequence
from queue import Empty, Queue
from typing import Any

from celery import signals
from celery._state import _task_stack
from celery.app.task import Context, Task
from celery.utils.imports import symbol_by_name
from celery.utils.nodenames import gethostname
from celery.worker.request import create_request_cls
from celery.worker.strategy import hybrid_to_proto2, proto1_to_proto2
from django.conf import settings
from django.core.cache import cache
from kombu.utils.uuid import uuid

logger = logging.getLogger("vigil.batching")

#: What the pool process reports back for a batch.
BATCH_OK = "ok"
BATCH_FAILED = "failed"


def batch_size() -> int:
    """Messages per batch (``VIGIL_GPU_BATCH_SIZE``, at least 1)."""
    return max(1, int(getattr(settings, "VIGIL_GPU_BATCH_SIZE", 32)))


def batch_wait_seconds() -> float:
    """Longest wait for a batch to fill after its first message (``VIGIL_GPU_BATCH_WAIT_SECONDS``,
    at least 10 ms)."""
    return max(0.01, float(getattr(settings, "VIGIL_GPU_BATCH_WAIT_SECONDS", 0.5)))


class BatchRequest:
    """One message of a batch, as the task sees it (picklable for the prefork pool)."""

    def __init__(
        self,
        *,
        id: str,
        name: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        delivery_info: dict[str, Any],
        hostname: str,
    ) -> None:
        self.id = id
        self.name = name
        self.args = tuple(args)
        self.kwargs = dict(kwargs)
        self.delivery_info = delivery_info
        self.hostname = hostname

    @classmethod
    def from_request(cls, request: Any) -> BatchRequest:
        args, kwargs, _embed = request._payload
        return cls(
            id=request.id,
            name=request.name,
            args=args,
            kwargs=kwargs,
            delivery_info=dict(request.delivery_info or {}),
            hostname=request.hostname,
        )

    def __repr__(self) -> str:  # ids only: the args are ids too, but keep logs to the task id
        return f"<BatchRequest {self.name}[{self.id}]>"


#: How long a job is remembered as having been in a batch that failed or lost its process.
LOST_MARK_SECONDS = 24 * 60 * 60


def _lost_key(name: str, args: Sequence[Any]) -> str:
    digest = hashlib.sha256(json.dumps([name, [str(a) for a in args]]).encode()).hexdigest()
    return f"gpu-batch-lost:{digest[:40]}"


#: What a task wants done with the jobs of its lost batch that were lost for the first time
#: (their arguments), e.g. the text scoring's: let the reaper send them again on its next tick
#: instead of after its cooldown. Called in the worker's main process; must be quick.
LostHandler = Callable[[list[list[Any]]], None]
_lost_handlers: dict[str, LostHandler] = {}


def lost_handler_register(name: str) -> Callable[[LostHandler], LostHandler]:
    def register(handler: LostHandler) -> LostHandler:
        _lost_handlers[name] = handler
        return handler

    return register


def lost_mark(name: str, requests: Sequence[BatchRequest]) -> list[BatchRequest]:
    """Remember the jobs of a batch that failed or lost its process (shared cache; an outage only
    means they are batched together again). Returns those not remembered before: lost for the
    first time (on a cache outage, none)."""
    keys = {_lost_key(name, r.args): r for r in requests}
    try:
        before = cache.get_many(list(keys))
        cache.set_many(dict.fromkeys(keys, 1), timeout=LOST_MARK_SECONDS)
    except Exception:
        logger.warning("could not remember the jobs of a lost batch of %s", name)
        return []
    return [r for key, r in keys.items() if key not in before]


def lost_handle(name: str, requests: Sequence[BatchRequest]) -> None:
    """Mark the jobs of a lost batch (:func:`lost_mark`) and give those lost for the first time
    to the task's handler. A job lost again waits for the reaper's cooldown: a text that kills
    its process is not sent again every minute."""
    first = lost_mark(name, requests)
    handler = _lost_handlers.get(name)
    if handler is None or not first:
        return
    try:
        handler([list(r.args) for r in first])
    except Exception as exc:  # the reaper's cooldown still sends them later
        logger.warning("lost-batch handler of %s failed: %s", name, type(exc).__name__)


def batches_isolating_lost(requests: Sequence[BatchRequest]) -> list[list[BatchRequest]]:
    """The batch's jobs as one group, except those that were in a batch that failed or lost its
    process before: each of them alone, after the others, in random order. A text that kills
    its process (a crash, memory) then takes only itself down once its batch-mates have been
    stored, instead of taking them down with it every time the reaper re-sends them together."""
    try:
        marked = cache.get_many([_lost_key(r.name, r.args) for r in requests])
    except Exception:
        marked = {}
    lost = [r for r in requests if _lost_key(r.name, r.args) in marked]
    fresh = [r for r in requests if _lost_key(r.name, r.args) not in marked]
    random.shuffle(lost)
    return ([fresh] if fresh else []) + [[r] for r in lost]


def _discarded(request: Any) -> bool:
    """Whether Celery discards this message (revoked by id or header, or past its ``expires``).
    Celery's ``Request.revoked()`` then acknowledges it and reports it revoked, as for any task.
    A check that fails keeps the message: running a job twice is harmless, losing one is not."""
    check = getattr(request, "revoked", None)
    if check is None:
        return False
    try:
        return bool(check())
    except Exception as exc:
        logger.warning("could not check message %s for revocation: %s", request.id, type(exc))
        return False


def _drain(queue: Queue[Any]) -> list[Any]:
    items = []
    while True:
        try:
            items.append(queue.get_nowait())
        except Empty:
            return items


def batch_run(task: Task, requests: list[BatchRequest]) -> str:
    """Run one batch in a pool process (the body of celery's trace, for a list of requests).

    Sends ``task_prerun`` / ``task_postrun`` like any task (Celery's Django fix-up closes stale
    database connections on them). Never raises an ``Exception``: a failure is logged with its
    class and reported as :data:`BATCH_FAILED`, so that the main process rejects the messages.
    """
    task_id = uuid()
    _task_stack.push(task)
    task.request_stack.push(Context(id=task_id, loglevel=0, logfile=None))
    outcome = BATCH_FAILED
    try:
        signals.task_prerun.send(
            sender=task, task_id=task_id, task=task, args=(requests,), kwargs={}
        )
        try:
            result = task(requests)
        except Exception as exc:  # SoftTimeLimitExceeded included
            result = None
            # the class and the stack only: an exception's message may quote its input
            logger.error(
                "batch %s of %d jobs failed: %s\n%s",
                task.name,
                len(requests),
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
        else:
            outcome = BATCH_OK
            signals.task_success.send(sender=task, result=result)
        signals.task_postrun.send(
            sender=task,
            task_id=task_id,
            task=task,
            args=(requests,),
            kwargs={},
            retval=result,
            state="SUCCESS" if outcome == BATCH_OK else "FAILURE",
        )
    finally:
        _task_stack.pop()
        task.request_stack.pop()
    return outcome


class GpuBatches(Task):
    """Base class of the gpu queue's batch tasks (see the module's docstring)."""

    abstract = True
    # A batch task's run() takes the list of requests; its messages carry the jobs' own args.
    typing = False

    def __init__(self) -> None:
        self._buffer: Queue[Any] = Queue()
        self._tref: Any = None
        self._pool: Any = None
        # With a transport that has no event loop (kombu's filesystem broker) the timer fires in
        # its own thread: the buffer and the timer change together, under this lock.
        self._lock = threading.Lock()

    @property
    def flush_every(self) -> int:
        return batch_size()

    @property
    def flush_interval(self) -> float:
        return batch_wait_seconds()

    # --- the worker's side: buffer messages, flush them to the pool -----------------------------
    def Strategy(self, task: Task, app: Any, consumer: Any) -> Callable[..., None]:
        """The consumer's message handler for this task: buffer instead of executing."""
        self._pool = consumer.pool
        hostname = consumer.hostname
        eventer = consumer.event_dispatcher
        connection_errors = consumer.connection_errors
        request_cls = create_request_cls(
            symbol_by_name(task.Request), task, consumer.pool, hostname, eventer, app=app
        )
        timer = consumer.timer

        def task_message_handler(
            message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **kw: Any
        ) -> None:
            if body is None and "args" not in message.payload:
                body, headers, decoded, utc = (
                    message.body,
                    message.headers,
                    False,
                    app.uses_utc_timezone(),
                )
            elif "args" in message.payload:
                body, headers, decoded, utc = hybrid_to_proto2(message, message.payload)
            else:
                body, headers, decoded, utc = proto1_to_proto2(message, body)
            request = request_cls(
                message,
                on_ack=ack,
                on_reject=reject,
                app=app,
                hostname=hostname,
                eventer=eventer,
                task=task,
                body=body,
                headers=headers,
                decoded=decoded,
                utc=utc,
                connection_errors=connection_errors,
            )
            if _discarded(request):  # revoked or expired already: acknowledged, never run
                return
            signals.task_received.send(sender=consumer, request=request)
            with self._lock:
                self._buffer.put(request)
                if self._tref is None:  # the first message of a batch starts the wait
                    self._tref = timer.call_repeatedly(self.flush_interval, self._do_flush)
                full = self._buffer.qsize() >= self.flush_every
            if full:
                self._do_flush()

        return task_message_handler

    def _do_flush(self) -> None:
        with self._lock:
            requests = _drain(self._buffer)
            if not requests and self._tref is not None:
                self._tref.cancel()  # nothing waiting: no timer until the next message
                self._tref = None
        # revoked or expired while they waited in the buffer: Celery's own strategy checks this
        # just before running a task; a batch must do the same for each of its messages
        requests = [r for r in requests if not _discarded(r)]
        size = self.flush_every
        for start in range(0, len(requests), size):  # more than a batch waiting: several
            self.flush(requests[start : start + size])

    def flush(self, requests: list[Any]) -> Any:
        """Hand one batch to the pool, with the task's time limits and our ack/reject policy."""
        acks_late = [r for r in requests if r.task.acks_late]
        acks_early = [r for r in requests if not r.task.acks_late]
        batch = [BatchRequest.from_request(r) for r in requests]
        name = self.name

        def on_accepted(pid: int, time_accepted: float) -> None:
            for request in acks_early:
                request.acknowledge()

        def reject_all(why: str) -> None:
            logger.error(
                "batch %s of %d jobs %s: messages rejected without requeue; the scoring "
                "reaper re-sends the work that is still missing",
                name,
                len(requests),
                why,
            )
            lost_handle(name, batch)
            for request in acks_late:
                request.reject(requeue=False)

        def on_return(outcome: Any) -> None:
            if outcome == BATCH_OK:
                for request in acks_late:
                    request.acknowledge()
            else:  # raised (logged in the pool process), or a pool error reported as a value
                reject_all("failed")

        def on_error(exc_info: Any) -> None:  # hard time limit, worker process lost
            exc = getattr(exc_info, "exception", exc_info)
            exc = getattr(exc, "exc", exc)  # billiard's ExceptionWithTraceback wrapper
            reject_all(f"ended by {type(exc).__name__}")

        def on_timeout(soft: bool, timeout: float) -> None:
            logger.warning(
                "batch %s hit its %s time limit (%.0f s)", name, "soft" if soft else "hard", timeout
            )

        conf = self.app.conf
        return self._pool.apply_async(
            batch_run,
            (self, batch),
            accept_callback=on_accepted,
            callback=on_return,
            error_callback=on_error,
            timeout_callback=on_timeout,
            soft_timeout=self.soft_time_limit or conf.task_soft_time_limit,
            timeout=self.time_limit or conf.task_time_limit,
        )

    # --- eager calls -----------------------------------------------------------------------------
    def apply(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *rest: Any,
        **options: Any,
    ) -> Any:
        """Run at once as a batch of one (``task.apply(args=...)``, ``task_always_eager``)."""
        request = BatchRequest(
            id=options.get("task_id") or uuid(),
            name=self.name,
            args=args or (),
            kwargs=kwargs or {},
            delivery_info={"is_eager": True, "routing_key": options.get("routing_key")},
            hostname=gethostname(),
        )
        return super().apply(([request],), {}, *rest, **options)
