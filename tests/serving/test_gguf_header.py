"""The header reader against the `gguf` library's own reader, and against damaged and hostile files."""

from __future__ import annotations

import struct

import gguf
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.serving.default_model import default_gguf_path
from app.serving.gguf_header import GGUFArray, GGUFHeaderError, NotGGUFError, read_gguf_header


def library_view(path) -> tuple[dict, dict]:
    """What `GGUFReader` says: scalars and strings as values, arrays as (item type, length)."""
    reader = gguf.GGUFReader(str(path))
    metadata = {}
    for key, found in reader.fields.items():
        if key.startswith("GGUF."):
            continue  # the reader's own entries for the version and counts
        if found.types[:2] == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.ARRAY]:
            continue  # the library flattens nested arrays; the test checks that one by hand
        if found.types[0] == gguf.GGUFValueType.ARRAY:
            metadata[key] = GGUFArray(int(found.types[1]), len(found.data))
        else:
            metadata[key] = found.contents()
    shapes = {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    return metadata, shapes


def assert_same_as_the_library(path) -> None:
    header = read_gguf_header(path)
    metadata, shapes = library_view(path)
    assert header.metadata.keys() >= metadata.keys()
    assert header.metadata.keys() - metadata.keys() <= {"t.nested"}
    for key, value in metadata.items():
        if isinstance(value, float):
            assert header.metadata[key] == pytest.approx(value), key
        else:
            assert header.metadata[key] == value, key
    assert header.tensor_shapes == shapes
    assert header.parameter_count == sum(int(t.n_elements) for t in gguf.GGUFReader(str(path)).tensors)


def test_the_shipped_model_reads_as_the_library_reads_it():
    path = default_gguf_path()
    assert_same_as_the_library(path)
    header = read_gguf_header(path)
    assert header.metadata["general.architecture"] == "llama"
    assert header.metadata["tokenizer.ggml.tokens"] == GGUFArray(gguf.GGUFValueType.STRING, 49152)
    assert 130_000_000 < header.parameter_count < 140_000_000


def write_every_kind(path) -> None:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint8("t.u8", 7)
    writer.add_int8("t.i8", -7)
    writer.add_uint16("t.u16", 700)
    writer.add_int16("t.i16", -700)
    writer.add_uint32("t.u32", 70_000)
    writer.add_int32("t.i32", -70_000)
    writer.add_float32("t.f32", 0.25)
    writer.add_bool("t.bool", True)
    writer.add_uint64("t.u64", 2**40)
    writer.add_int64("t.i64", -(2**40))
    writer.add_float64("t.f64", 1 / 3)
    writer.add_string("t.text", "naïve ☃")
    writer.add_array("t.numbers", [1, 2, 3])
    writer.add_array("t.words", ["a", "bb", ""])
    writer.add_array("t.nested", [[1, 2], [3]])
    writer.add_tensor("a.weight", np.zeros((3, 5), dtype=np.float32))
    writer.add_tensor("b.weight", np.zeros((2, 4, 6), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_every_value_type_and_nested_arrays_read_as_the_library_reads_them(tmp_path):
    path = tmp_path / "kinds.gguf"
    write_every_kind(path)
    assert_same_as_the_library(path)
    header = read_gguf_header(path)
    assert header.metadata["t.text"] == "naïve ☃" and header.metadata["t.i64"] == -(2**40)
    assert header.metadata["t.nested"] == GGUFArray(gguf.GGUFValueType.ARRAY, 2)
    assert header.parameter_count == 3 * 5 + 2 * 4 * 6


@pytest.fixture(scope="module")
def sample_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("gguf") / "kinds.gguf"
    write_every_kind(path)
    return path.read_bytes()


def header_length(data: bytes, tmp_path) -> int:
    """Where the header ends: the first byte after the last tensor's description."""
    path = tmp_path / "whole.gguf"
    path.write_bytes(data)
    return gguf.GGUFReader(str(path)).data_offset


def test_a_file_cut_anywhere_inside_its_header_is_refused_cleanly(sample_bytes, tmp_path):
    end = header_length(sample_bytes, tmp_path)
    for cut in range(4, end + 1):
        path = tmp_path / "cut.gguf"
        path.write_bytes(sample_bytes[:cut])
        with pytest.raises(GGUFHeaderError):
            read_gguf_header(path)


def test_a_file_cut_inside_its_weights_is_refused(tmp_path):
    whole = default_gguf_path().read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(whole[: len(whole) - 1_000_000])  # an upload that stopped a megabyte short
    with pytest.raises(GGUFHeaderError, match="ends before the data of tensor"):
        read_gguf_header(path)
    with pytest.raises(ValueError):
        gguf.GGUFReader(str(path))  # the library refuses it too: the check is not stricter than it


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=4, max_value=400), byte=st.integers(min_value=0, max_value=255))
def test_a_damaged_byte_gives_a_header_or_a_clean_refusal(sample_bytes, tmp_path_factory, position, byte):
    damaged = bytearray(sample_bytes)
    damaged[position] = byte
    path = tmp_path_factory.mktemp("damaged") / "damaged.gguf"
    path.write_bytes(bytes(damaged))
    try:
        read_gguf_header(path)
    except GGUFHeaderError:
        pass  # anything else (MemoryError, struct.error, a hang) fails the test


def hostile(tmp_path, body: bytes, version: int = 3):
    path = tmp_path / "hostile.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<I", version) + body)
    return path


KEY = struct.pack("<Q", 1) + b"k"
HOSTILE = {
    "huge counts": struct.pack("<QQ", 2**63, 2**63),
    "a key longer than the file": struct.pack("<QQ", 0, 1) + struct.pack("<Q", 2**62),
    "2^60 numbers": struct.pack("<QQ", 0, 1) + KEY + struct.pack("<IIQ", 9, 4, 2**60),
    "2^60 strings": struct.pack("<QQ", 0, 1) + KEY + struct.pack("<IIQ", 9, 8, 2**60),
    "an unknown value type": struct.pack("<QQ", 0, 1) + KEY + struct.pack("<I", 99),
    "arrays nested too deep": struct.pack("<QQ", 0, 1)
    + KEY
    + struct.pack("<I", 9)
    + struct.pack("<IQ", 9, 1) * 6,
    "1000 dimensions": struct.pack("<QQ", 1, 0) + KEY + struct.pack("<I", 1000),
    "a tensor described twice": struct.pack("<QQ", 2, 0) + (KEY + struct.pack("<IQIQ", 1, 0, 0, 0)) * 2,
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_counts_types_and_nesting_are_refused_at_once(tmp_path, body):
    with pytest.raises(GGUFHeaderError):
        read_gguf_header(hostile(tmp_path, body))


def test_an_unsupported_version_is_named(tmp_path):
    with pytest.raises(GGUFHeaderError, match="version 1"):
        read_gguf_header(hostile(tmp_path, struct.pack("<QQ", 0, 0), version=1))


def test_other_files_are_not_gguf(tmp_path):
    for content in (b"", b"GGU", b"PK\x03\x04 a zip file"):
        path = tmp_path / "other.gguf"
        path.write_bytes(content)
        with pytest.raises(NotGGUFError):
            read_gguf_header(path)
    empty_header = tmp_path / "magic-only.gguf"
    empty_header.write_bytes(b"GGUF")
    with pytest.raises(GGUFHeaderError):
        read_gguf_header(empty_header)
