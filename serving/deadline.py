"""The service's request deadline (``traffic.timeout``): a request whose answer has not started
in time gets a 504.

Why not BentoML's own TimeoutMiddleware: it arms ``loop.call_later(timeout, ...)`` per request
and never cancels it, so each request's timer, future, context and trace span stay alive for the
whole timeout (30 s; at ~1,000 requests/s that is 150-230k objects), and the full garbage
collections that walk them paused the worker for 57-145 ms, long after the load had ended (the
p99 of single requests after a burst). Here the timer is cancelled as soon as the answer starts,
and the app runs in the request's own task (BentoML's starts a second task per request).

BentoML 1.4 builds its middleware stack from the name
``bentoml._internal.server.http.traffic.TimeoutMiddleware`` and has no switch to leave it out
(``traffic.timeout`` must be a positive number), so :func:`install` puts :class:`Deadline` under
that name, and refuses to run when a BentoML upgrade has moved it.
"""

from __future__ import annotations

import asyncio

from bentoml._internal.server.http import traffic

from serving.auth import reply


class Deadline:
    """ASGI middleware: ``timeout`` seconds for the app to start its answer, else a 504."""

    def __init__(self, app, timeout: float) -> None:
        self.app, self.timeout = app, timeout

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        deadline, started = asyncio.timeout(self.timeout), False

        async def answer(message) -> None:
            nonlocal started
            if not started:  # answering: no deadline for the rest of the body
                started = True
                if not deadline.expired():  # (an app that caught the cancel answers late)
                    deadline.reschedule(None)
            await send(message)

        try:
            async with deadline:
                await self.app(scope, receive, answer)
        except TimeoutError:
            if not deadline.expired():  # the app's own
                raise
        if deadline.expired() and not started:  # also when the app swallowed the cancel
            message = f"not answered within {self.timeout:g} s (the service's traffic timeout)"
            await reply(send, 504, {"error": message, "field": None})


def install() -> None:
    """Make BentoML build its request deadline from :class:`Deadline`."""
    if not isinstance(getattr(traffic, "TimeoutMiddleware", None), type):
        raise RuntimeError(
            "bentoml._internal.server.http.traffic.TimeoutMiddleware is gone: this BentoML "
            "version builds its request timeout elsewhere; check serving/deadline.py against it"
        )
    traffic.TimeoutMiddleware = Deadline
