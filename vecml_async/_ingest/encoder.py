"""From raw chunks to encoded rows: the checks every row passes, and generated ids.

:class:`ChunkEncoder` validates one aligned :class:`RawChunk` (ids, dimension, finiteness,
attribute values, sparse indices), generates the ids it lacks, refuses an id seen earlier in
the same input (when asked to), and encodes each column once
(:class:`~vecml_async._ingest.encoding.EncodedRows`). A bad row raises
:class:`InvalidInputError` with its absolute index; the executor then keeps the rows around
it. Generated ids are ``f"{id_prefix}{index}"``: a row's id depends only on the prefix and its
place in the input, so reading the input again (a resume, ``failed_rows()``) gives it the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vecml_async._ingest.chunks import RawChunk
from vecml_async._ingest.encoding import (
    EncodedRows,
    check_matrix,
    encode_attributes,
    encode_ids,
    encode_matrix,
    encode_vector_list,
)
from vecml_async._ingest.sparse import encode_sparse
from vecml_async.errors import InvalidInputError

#: Dimension of a sparse collection created without ``vector_dim``.
DEFAULT_SPARSE_DIM = 2**21


def _module_of(obj: object) -> str:
    return type(obj).__module__.split(".")[0]


@dataclass
class ChunkEncoder:
    """Encodes raw chunks: validates, generates missing ids, checks duplicate ids.

    Attributes:
        id_prefix: generated ids are ``f"{id_prefix}{row_index}"``.
        dim: the expected vector dimension (learnt from the first row when ``None``).
        sparse_format: JSON form of sparse vectors (see ``sparse.SPARSE_FORMATS``).
        sparse_dim: the dimension sparse indices must stay under.
        check_duplicates: refuse an id seen earlier in the same input (keeps a set of ids).
        check_finite: refuse NaN and infinity in arrays (off when the caller checked the
            whole input already).
        generated: some ids were generated.
    """

    id_prefix: str
    dim: int | None = None
    sparse_format: str = "pairs"
    sparse_dim: int = DEFAULT_SPARSE_DIM
    check_duplicates: bool = True
    check_finite: bool = True
    generated: bool = False
    _seen: set[str] = field(default_factory=set, repr=False)

    def generated_ids(self, start: int, count: int) -> list[str]:
        return [f"{self.id_prefix}{i}" for i in range(start, start + count)]

    def encode(
        self,
        raw: RawChunk,
        *,
        record: bool = True,
        check: Callable[[EncodedRows], None] | None = None,
    ) -> EncodedRows:
        """Validate and encode one chunk (see the class docstring).

        ``record=False`` encodes without remembering anything (ids seen, the dimension):
        for rows that are only compared with what a checkpoint recorded. ``check`` runs on
        the encoded rows before anything is remembered, and may refuse them.
        """
        n = len(raw)
        if raw.ids is None:
            ids, id_col = encode_ids(self.generated_ids(raw.start, n), raw.start)
        else:
            if len(raw.ids) != n:
                raise InvalidInputError(
                    f"{len(raw.ids)} ids for {n} vectors", field="string_ids", index=raw.start
                )
            ids, id_col = encode_ids(raw.ids, raw.start)
        if raw.attributes is not None and len(raw.attributes) != n:
            raise InvalidInputError(
                f"{len(raw.attributes)} attribute rows for {n} vectors",
                field="attributes",
                index=raw.start,
            )
        dim: int | None
        if raw.sparse:
            vec_col = encode_sparse(
                raw.vectors, ids, raw.start, dim=self.sparse_dim, sparse_format=self.sparse_format
            )
            dim = None
        elif hasattr(raw.vectors, "ndim") and _module_of(raw.vectors) == "numpy":
            block = check_matrix(
                raw.vectors, ids, raw.start, self.dim, check_finite=self.check_finite
            )
            vec_col, dim = encode_matrix(block), int(block.shape[1])
        else:
            vec_col, dim = encode_vector_list(raw.vectors, ids, raw.start, self.dim)
        attrs = encode_attributes(raw.attributes, ids, raw.start) if raw.attributes else None
        encoded = EncodedRows(raw.start, ids, id_col, vec_col, attrs, dim)
        if check is not None:
            check(encoded)
        if record:
            if dim is not None:
                self.dim = dim
            # Last, so a chunk refused for another reason leaves the set of seen ids untouched.
            if raw.ids is None:
                self.generated = True
            elif self.check_duplicates:
                self._check_duplicates(ids, raw.start)
        return encoded

    def _check_duplicates(self, ids: list[str], start: int) -> None:
        seen = self._seen
        fresh = set(ids)
        if len(fresh) == len(ids) and seen.isdisjoint(fresh):
            seen |= fresh
            return
        # Slow path, errors only: find the first repeated id.
        local: set[str] = set()
        for offset, value in enumerate(ids):
            if value in seen or value in local:
                raise InvalidInputError(
                    "duplicate id", field="string_ids", index=start + offset, row_id=value
                )
            local.add(value)
