"""A GGUF file's header (metadata and tensor shapes) read straight from its bytes, weights untouched.

The `gguf` library's `GGUFReader` builds a numpy view for every entry of every array on open: a
49k-word vocabulary and its merges take ~2.2 s, paid on each model registration, upload and export.
Everything Toolsmith reads from a header is a scalar, a string, an array's length or a tensor's
shape, so this walks the layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md) and skips
array bodies: ~30 ms for the same file. Like `GGUFReader`, it refuses a file whose tensors do not fit
in it (an upload cut short in its weights). The tests compare its answers with `GGUFReader`'s.
"""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_DIMS = 8  # ggml has 4; anything past a few is a damaged file, not a tensor
MAX_ARRAY_DEPTH = 4  # arrays of arrays are allowed; deeper nesting is hostile input
DEFAULT_ALIGNMENT = 32  # where the tensor data starts, unless general.alignment says otherwise

# Value types, numbered as in the specification. 8 is a string, 9 an array.
STRING, ARRAY = 8, 9
SCALAR_FORMATS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}


class GGUFHeaderError(ValueError):
    """The bytes do not follow the GGUF layout (damaged, or cut short)."""


class NotGGUFError(GGUFHeaderError):
    """The file does not start with the GGUF magic bytes: some other kind of file."""


@dataclass(frozen=True)
class GGUFArray:
    """An array value: its item type and length (the items are skipped, not read)."""

    item_type: int
    length: int


@dataclass
class GGUFHeader:
    version: int
    metadata: dict[str, object] = field(default_factory=dict)
    tensor_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def parameter_count(self) -> int:
        return sum(math.prod(shape) for shape in self.tensor_shapes.values())


def read_gguf_header(path: str | Path) -> GGUFHeader:
    """The header of the GGUF file at `path`; GGUFHeaderError when the bytes do not follow the layout."""
    with open(path, "rb") as handle:
        if handle.read(4) != MAGIC:
            raise NotGGUFError("it does not start with the GGUF magic bytes")
        try:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:  # an empty file cannot be mapped
            raise GGUFHeaderError("the file is empty") from exc
    with data:
        return _Cursor(data).header()


def _tensor_bytes(name: str, kind: int, elements: int) -> int:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType  # constants only: no reader

    try:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
    except (ValueError, KeyError):
        raise GGUFHeaderError(f"tensor {name!r} has an unknown type {kind}") from None
    return elements // block * size


class _Cursor:
    def __init__(self, data: mmap.mmap):
        self.data = data
        self.offset = 4  # past the magic

    def header(self) -> GGUFHeader:
        version = self.unpack("<I")
        if version not in SUPPORTED_VERSIONS:
            raise GGUFHeaderError(f"GGUF version {version} is not supported (only 2 and 3)")
        tensor_count, kv_count = self.unpack("<Q"), self.unpack("<Q")
        header = GGUFHeader(version)
        for _ in range(kv_count):  # a count larger than the file runs out of bytes, and raises
            key = self.string()
            header.metadata[key] = self.value(self.unpack("<I"), depth=0)
        extents = []
        for _ in range(tensor_count):
            name = self.string()
            dims = self.unpack("<I")
            if dims > MAX_DIMS:
                raise GGUFHeaderError(f"tensor {name!r} claims {dims} dimensions")
            shape = tuple(self.unpack("<Q") for _ in range(dims))
            kind, offset = self.unpack("<I"), self.unpack("<Q")
            if name in header.tensor_shapes:
                raise GGUFHeaderError(f"tensor {name!r} is described twice")
            header.tensor_shapes[name] = shape
            extents.append((name, offset, _tensor_bytes(name, kind, math.prod(shape))))
        self.check_data(header.metadata.get("general.alignment", DEFAULT_ALIGNMENT), extents)
        return header

    def check_data(self, alignment, extents: list[tuple[str, int, int]]) -> None:
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise GGUFHeaderError(f"general.alignment {alignment!r} is not a power of two")
        start = -(-self.offset // alignment) * alignment
        for name, offset, size in extents:
            if start + offset + size > len(self.data):
                raise GGUFHeaderError(f"the file ends before the data of tensor {name!r}")

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.data):
            raise GGUFHeaderError("the file ends inside its header")
        (value,) = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += size
        return value

    def skip(self, size: int) -> None:
        if size < 0 or self.offset + size > len(self.data):
            raise GGUFHeaderError("the file ends inside its header")
        self.offset += size

    def string(self) -> str:
        length = self.unpack("<Q")
        start = self.offset
        self.skip(length)
        return self.data[start : self.offset].decode("utf-8", errors="replace")

    def value(self, kind: int, depth: int):
        if kind in SCALAR_FORMATS:
            return self.unpack(SCALAR_FORMATS[kind])
        if kind == STRING:
            return self.string()
        if kind == ARRAY:
            if depth >= MAX_ARRAY_DEPTH:
                raise GGUFHeaderError("arrays nested too deep")
            item_type, length = self.unpack("<I"), self.unpack("<Q")
            self.skip_items(item_type, length, depth + 1)
            return GGUFArray(item_type, length)
        raise GGUFHeaderError(f"unknown value type {kind}")

    def skip_items(self, item_type: int, length: int, depth: int) -> None:
        if item_type in SCALAR_FORMATS:
            self.skip(struct.calcsize(SCALAR_FORMATS[item_type]) * length)
        elif item_type == STRING:
            for _ in range(length):  # each string costs at least 8 bytes: a false length runs out
                self.skip(self.unpack("<Q"))
        else:
            for _ in range(length):
                self.value(item_type, depth)
