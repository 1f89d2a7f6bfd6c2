"""Read Qt binary resource bundles (``.rcc``, as written by ``rcc -binary``), e.g. GCompris'
activity data, without Qt.

Format (Qt's ``rcc.cpp`` / ``qresource.cpp``, versions 1-3; all integers big-endian):

* header: ``b"qres"``, version ``u32``, tree offset ``u32``, data offset ``u32``, names offset
  ``u32``, and from version 3 an overall flags ``u32``;
* tree: one node per entry, 14 bytes (version 1) or 22 bytes (2 and 3: plus a ``u64``
  last-modified time): name offset ``u32``, flags ``u16`` (1 = zlib-compressed, 2 = directory,
  4 = zstd-compressed), then for a directory child count ``u32`` and first child index ``u32``,
  for a file country ``u16``, language ``u16`` and data offset ``u32``. Node 0 is the root
  directory;
* names: length ``u16`` (in UTF-16 code units), hash ``u32``, the name in UTF-16-BE;
* data: length ``u32`` then the bytes; zlib data is ``qCompress`` output (a ``u32``
  uncompressed size, then a zlib stream).

:func:`read_rcc` returns ``{path: bytes}`` for every file; :func:`iter_rcc` streams them.
Zstd-compressed entries need the ``zstandard`` package and raise :class:`RccError` without it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

_COMPRESSED, _DIRECTORY, _COMPRESSED_ZSTD = 1, 2, 4


class RccError(ValueError):
    """The file is not a readable Qt resource bundle (the message names the file and why)."""


def iter_rcc(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """``(path inside the bundle, file bytes)`` for every file, depth first.

    Raises:
        RccError: bad magic, unsupported version, offsets outside the file, or bad data.
    """
    path = Path(path)
    buf = path.read_bytes()
    if buf[:4] != b"qres":
        raise RccError(f"{path}: not a Qt resource bundle (no 'qres' magic)")
    try:
        version, tree, data, names = struct.unpack_from(">IIII", buf, 4)
    except struct.error as exc:
        raise RccError(f"{path}: truncated header") from exc
    if version not in (1, 2, 3):
        raise RccError(f"{path}: unsupported rcc format version {version}")
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (n,) = struct.unpack_from(">H", buf, names + offset)
        start = names + offset + 6
        return buf[start:start + 2 * n].decode("utf-16-be")

    def payload(offset: int, flags: int, where: str) -> bytes:
        (n,) = struct.unpack_from(">I", buf, data + offset)
        raw = buf[data + offset + 4:data + offset + 4 + n]
        if len(raw) != n:
            raise RccError(f"{path}: {where}: data runs past the end of the file")
        if flags & _COMPRESSED:
            try:
                return zlib.decompress(raw[4:])
            except zlib.error as exc:
                raise RccError(f"{path}: {where}: bad zlib data ({exc})") from exc
        if flags & _COMPRESSED_ZSTD:
            try:
                import zstandard
            except ImportError as exc:
                raise RccError(f"{path}: {where} is zstd-compressed; pip install "
                               "zstandard") from exc
            return zstandard.ZstdDecompressor().decompress(raw)
        return raw

    def walk(index: int, prefix: str, depth: int) -> Iterator[tuple[str, bytes]]:
        if depth > 64:
            raise RccError(f"{path}: directory tree deeper than 64 (a loop?)")
        off = tree + index * node_size
        try:
            name_off, flags = struct.unpack_from(">IH", buf, off)
            name = name_at(name_off) if index else ""
            here = f"{prefix}/{name}" if prefix else name
            if flags & _DIRECTORY:
                count, first = struct.unpack_from(">II", buf, off + 6)
                for child in range(first, first + count):
                    yield from walk(child, here, depth + 1)
            else:
                _country, _lang, data_off = struct.unpack_from(">HHI", buf, off + 6)
                yield here, payload(data_off, flags, here)
        except struct.error as exc:
            raise RccError(f"{path}: node {index} lies outside the file") from exc

    yield from walk(0, "", 0)


def read_rcc(path: str | Path) -> dict[str, bytes]:
    """Every file of the bundle as ``{path: bytes}`` (see :func:`iter_rcc`)."""
    return dict(iter_rcc(path))
