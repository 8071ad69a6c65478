"""Hooks and tracing: let an application log, count and trace what the client sends.

Three events, each a frozen dataclass handed to the hooks registered for it:

* :class:`RequestEvent`: an attempt is about to go out (after its rate-limit token);
* :class:`ResponseEvent`: an attempt ended, with an answer or without one;
* :class:`RetryEvent`: the call will try again, after ``delay`` seconds.

A hook is a callable taking the event; a coroutine function is awaited. Hooks run in the
calling task, in the order given; an exception raised by a hook propagates out of the call
(a broken hook is a bug to see, not one to hide). Events carry no request bodies and no key;
their errors are already redacted.

**OpenTelemetry.** When ``opentelemetry-api`` is installed (``pip install
'vecml-async[otel]'``), every call is one ``CLIENT`` span named ``vecml <endpoint>``, with the
attributes ``vecml.endpoint``, ``http.request.method``, ``url.full``, ``vecml.attempts``,
``vecml.retries``, ``vecml.rate_limited`` and ``http.response.status_code``, and one span
event per retry. Without a configured SDK the API's tracer is a no-op; without the package
nothing is imported (the import is tried once, at the first call) and spans cost nothing.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from vecml_async._version import __version__
from vecml_async.errors import InvalidInputError, VecMLError

ResponseOutcome = Literal["ok", "rate_limited", "server_error", "refused", "transport_error"]


@dataclass(frozen=True)
class RequestEvent:
    """An attempt is about to be sent.

    Attributes:
        endpoint: the endpoint, e.g. ``"add_data_batch"``.
        url: the full URL posted to.
        attempt: the attempt number within the call (1-based).
        body_bytes: the size of the request body.
    """

    endpoint: str
    url: str
    attempt: int
    body_bytes: int


@dataclass(frozen=True)
class ResponseEvent:
    """An attempt ended.

    Attributes:
        endpoint: the endpoint.
        url: the full URL posted to.
        attempt: the attempt number within the call (1-based).
        status_code: the HTTP status, or ``None`` when no answer came (``transport_error``).
        elapsed: seconds from sending to the end of the answer.
        outcome: ``ok``, ``rate_limited``, ``server_error`` (5xx), ``refused`` (any other
            refusal) or ``transport_error`` (no usable answer).
        error: the error this attempt would raise (``None`` for ``ok``).
    """

    endpoint: str
    url: str
    attempt: int
    status_code: int | None
    elapsed: float
    outcome: ResponseOutcome
    error: VecMLError | None = None


@dataclass(frozen=True)
class RetryEvent:
    """The call will try again.

    Attributes:
        endpoint: the endpoint.
        attempt: the attempt that failed (1-based); the next one is ``attempt + 1``.
        delay: seconds the call waits before the next attempt (rate-limit tokens come on top;
            testing mode skips the wait but reports it).
        rate_limited: the failure was the rate-limit answer (backpressure: it does not spend
            ``max_retries``).
        error: the failed attempt's error.
    """

    endpoint: str
    attempt: int
    delay: float
    rate_limited: bool
    error: VecMLError


HookArg = Callable[[Any], object] | Iterable[Callable[[Any], object]] | None


def _hooks(value: HookArg, name: str) -> tuple[Callable[[Any], object], ...]:
    if value is None:
        return ()
    if callable(value):
        hooks: tuple[Any, ...] = (value,)
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        hooks = tuple(value)
    else:
        hooks = (value,)
    for hook in hooks:
        if not callable(hook):
            raise InvalidInputError(
                f"must be a callable or a list of callables, got {type(hook).__name__}",
                field=name,
            )
    return hooks


async def _run(hooks: tuple[Callable[[Any], object], ...], event: object) -> None:
    for hook in hooks:
        result = hook(event)
        if inspect.isawaitable(result):
            await result


@dataclass(frozen=True)
class Hooks:
    """The hooks of one client (shared by the clients ``with_options`` derives from it)."""

    on_request: tuple[Callable[[RequestEvent], object], ...] = ()
    on_response: tuple[Callable[[ResponseEvent], object], ...] = ()
    on_retry: tuple[Callable[[RetryEvent], object], ...] = ()

    @classmethod
    def of(
        cls,
        *,
        on_request: HookArg = None,
        on_response: HookArg = None,
        on_retry: HookArg = None,
    ) -> Hooks:
        """Hooks from callables or lists of callables; anything else is refused with an
        :class:`InvalidInputError` naming the parameter."""
        return cls(
            _hooks(on_request, "on_request"),
            _hooks(on_response, "on_response"),
            _hooks(on_retry, "on_retry"),
        )

    async def request(self, event: RequestEvent) -> None:
        await _run(self.on_request, event)

    async def response(self, event: ResponseEvent) -> None:
        await _run(self.on_response, event)

    async def retry(self, event: RetryEvent) -> None:
        await _run(self.on_retry, event)


# ----------------------------------------------------------------------------- tracing


class Span(Protocol):
    """The part of an OpenTelemetry span the transport uses."""

    def set_attribute(self, key: str, value: Any) -> Any: ...

    def add_event(self, name: str, attributes: Any = None) -> Any: ...


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def add_event(self, name: str, attributes: Any = None) -> None:
        return None


_NO_SPAN = _NoSpan()
_tracer: Any = None
_tracer_resolved = False


def _get_tracer() -> Any:
    """OpenTelemetry's tracer for this library, or ``None`` when the API is not installed."""
    global _tracer, _tracer_resolved
    if not _tracer_resolved:
        _tracer_resolved = True
        try:
            from opentelemetry import trace
        except ImportError:
            _tracer = None
        else:
            _tracer = trace.get_tracer("vecml_async", __version__)
    return _tracer


@contextlib.contextmanager
def call_span(endpoint: str, url: str) -> Iterator[Span]:
    """The span of one call (a no-op object when OpenTelemetry is not installed)."""
    tracer = _get_tracer()
    if tracer is None:
        yield _NO_SPAN
        return
    from opentelemetry.trace import SpanKind

    attributes = {"vecml.endpoint": endpoint, "http.request.method": "POST", "url.full": url}
    with tracer.start_as_current_span(
        f"vecml {endpoint}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span
