"""A request body as encoded bytes: what the transport sends and the pipeline builds.

Both sides depend on this small module, so neither depends on the other for the type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

#: orjson's option for numpy arrays and scalars, used wherever fields are encoded.
NUMPY_OPTION: Final = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class EncodedBody:
    """A request body as byte pieces, and its exact length."""

    # The pieces hold the key: kept out of repr (tracebacks rendered with locals show reprs).
    pieces: tuple[bytes | memoryview, ...] = field(repr=False)
    length: int

    def to_bytes(self) -> bytes:
        """The body as one buffer (joins the pieces; one copy)."""
        if len(self.pieces) == 1 and isinstance(self.pieces[0], bytes):
            return self.pieces[0]
        return b"".join(self.pieces)


def encode_request(api_key: str, fields: Mapping[str, Any]) -> EncodedBody:
    """The JSON body ``{"user_api_key": ..., **fields}`` (numpy values accepted as they are)."""
    body = orjson.dumps({"user_api_key": api_key, **fields}, option=NUMPY_OPTION)
    return EncodedBody((body,), len(body))
