"""Suite-wide check: no error raised anywhere in the suite shows an API key.

Every :class:`~vecml_async.VecMLError` created during the run is recorded; when the session
ends, the keys the suites use are searched for in the ``str()``, ``repr()`` and formatted
traceback of each (chained causes included).
"""

from __future__ import annotations

import signal
import traceback
import weakref
from collections.abc import Iterator

import pytest

from vecml_async.errors import VecMLError
from vecml_async.testing import TEST_API_KEY

# A suite started in the background of a non-interactive shell inherits SIGINT ignored, and
# so would the commands that the Ctrl-C tests start and interrupt: give them the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

#: Keys of the unit, robustness and fixture-based suites.
SUITE_KEYS = (
    "vml_unit-test-key-0123456789abcdef",
    "vml_robustness_key_9f3c2a7e5b1d4c6a8e0f",
    "vml_robustness_other_key_24b8d1",
    TEST_API_KEY,
)


@pytest.fixture(scope="session", autouse=True)
def _errors_never_show_a_key() -> Iterator[None]:
    """Record every VecMLError of the session; none may mention a suite key."""
    seen: list[weakref.ref[VecMLError]] = []
    texts: list[str] = []
    original = VecMLError.__init__

    def recording_init(self: VecMLError, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        seen.append(weakref.ref(self))
        texts.append(f"{self}\n{self!r}")

    VecMLError.__init__ = recording_init  # type: ignore[method-assign]
    try:
        yield
    finally:
        VecMLError.__init__ = original  # type: ignore[method-assign]
    for ref in seen:
        error = ref()
        if error is not None:
            texts.append("".join(traceback.format_exception(error)))
    leaks = [text for text in texts for key in SUITE_KEYS if key in text]
    assert not leaks, f"{len(leaks)} error(s) show an API key, e.g.: {leaks[0][:500]}"
