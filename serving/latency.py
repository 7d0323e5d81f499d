"""Two fixes that keep BentoML 1.4.39's tail latency flat under load (docs/design.md §5, measured in
``docs/performance.md``).

1. BentoML's ``TimeoutMiddleware`` schedules ``loop.call_later(timeout, ...)`` per request and never
   cancels the handle; the handle keeps the request's context (with a recording OpenTelemetry span)
   alive for the whole traffic timeout, so the heap grows by ~20 objects per request and Python's full
   collections grow from ~70 ms to ~500 ms within a minute. :func:`cancel_request_timers` replaces the
   middleware's ``__call__`` with one that cancels its timer when the request ends (same behaviour
   otherwise: a 504 after the timeout).
2. :func:`freeze_heap` moves everything alive after start-up (TensorFlow, the policy) out of the
   collector's view, so a full collection only walks what requests allocate.

The patch is checked against the installed BentoML version and refuses to apply to another one, since
it replaces a private method.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any, Final

log = logging.getLogger("bentoml.aisle.latency")

PATCHED_FOR: Final = "1.4.39"


def cancel_request_timers() -> bool:
    """Patch BentoML's timeout middleware (idempotent); False when the installed version differs."""
    from importlib.metadata import version

    from bentoml._internal.server.http import traffic

    installed = version("bentoml")
    if installed != PATCHED_FOR:
        log.warning("BentoML %s is not %s: request-timer patch not applied", installed, PATCHED_FOR)
        return False
    middleware = traffic.TimeoutMiddleware
    if getattr(middleware, "_aisle_patched", False):
        return True

    async def call(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        from starlette.responses import JSONResponse

        loop = asyncio.get_running_loop()
        started = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, started)

        async def sending(message: Any) -> None:
            if not started.done():
                started.set_result(None)
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, sending))
        task.add_done_callback(lambda _t: None if started.done() else started.set_result(None))
        try:
            await started
        except TimeoutError:
            if task.cancel():
                body = {"error": f"Not able to process the request in {self.timeout} seconds"}
                await JSONResponse(body, status_code=504)(scope, receive, send)
                return
        else:
            await task
        finally:
            timer.cancel()

    middleware.__call__ = call  # type: ignore[method-assign]
    middleware._aisle_patched = True  # type: ignore[attr-defined]
    return True


def freeze_heap() -> int:
    """Collect once, then freeze what survived; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
