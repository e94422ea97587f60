"""Bytes -> text for transcript files: BOMs, UTF-16/32 without BOM, legacy code pages.

Order: a byte-order mark decides; else NUL-byte patterns reveal UTF-16/32; else UTF-8 if
the bytes are valid UTF-8; else charset-normalizer's best guess (cp1252, GB18030, Big5, …).
Text with control characters other than tab/newline/carriage return/form feed is refused
as binary, so a misdetected file never indexes as gibberish.
"""

from __future__ import annotations

import codecs
import re

from retrieval.formats.errors import TranscriptError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# Legacy encodings we accept from the detector; anything else is more likely binary misread.
_LEGACY = {
    "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1257", "latin_1", "iso8859_15", "iso8859_2",
    "gb18030", "gb2312", "gbk", "big5", "big5hkscs", "cp950", "cp936", "shift_jis", "cp932", "euc_jp",
    "euc_kr", "cp949", "koi8_r", "mac_roman", "iso8859_5", "iso8859_7", "iso8859_9", "cp1255", "cp1256",
    "iso8859_8", "iso8859_6", "cp874", "tis_620", "utf_8",
}


def decode(data: bytes, path: str) -> str:
    """Decode a transcript file's bytes; raises TranscriptError when it is not text."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return _checked(_strict(data[len(bom):], name, path), path, name)
    guessed = _utf16_32_without_bom(data)
    if guessed:
        return _checked(_strict(data, guessed, path), path, guessed)
    try:
        return _checked(data.decode("utf-8"), path, "utf-8")
    except UnicodeDecodeError as e:
        first_bad = e.start
    if b"\x00" in data:
        raise TranscriptError(path, data[: data.index(b"\x00")].count(b"\n") + 1,
                              "contains NUL bytes: a binary file, not a text transcript")
    name = _detect(data)
    if name is None:
        line = data[:first_bad].count(b"\n") + 1
        raise TranscriptError(path, line, f"not UTF-8 text (byte 0x{data[first_bad]:02x}) and no other text "
                                          "encoding fits; save it as UTF-8")
    return _checked(data.decode(name), path, name)


def _strict(data: bytes, name: str, path: str) -> str:
    try:
        return data.decode(name)
    except UnicodeDecodeError as e:
        line = data[: e.start].count("\n".encode(name)) + 1
        raise TranscriptError(path, line, f"not valid {name.upper()} text at byte {e.start}") from None


def _utf16_32_without_bom(data: bytes) -> str | None:
    """UTF-16/32 text of mostly ASCII characters has NULs at fixed positions."""
    sample = data[:4096]
    if len(sample) < 8 or b"\x00" not in sample:
        return None
    n = len(sample) - len(sample) % 4
    quads = [sample[i:i + 4] for i in range(0, n, 4)]
    if sum(q[1:] == b"\0\0\0" for q in quads) > 0.6 * len(quads):
        return "utf-32-le"
    if sum(q[:3] == b"\0\0\0" for q in quads) > 0.6 * len(quads):
        return "utf-32-be"
    even = sample[0:n:2]
    odd = sample[1:n:2]
    if odd.count(0) > 0.6 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.6 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _detect(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    results = from_bytes(data[: 1 << 20])
    best = results.best()
    if best is None:
        return None
    name = best.encoding
    # Short Western text fits several code pages equally well: cp1252 is the one such files use.
    if any(r.encoding == "cp1252" and r.chaos <= best.chaos and r.coherence >= best.coherence for r in results):
        name = "cp1252"
    if name not in _LEGACY:
        return None
    try:
        data.decode(name)
    except (UnicodeDecodeError, LookupError):
        return None
    return name


def _checked(text: str, path: str, name: str) -> str:
    m = _CONTROL.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        what = "NUL bytes" if m.group() == "\x00" else f"control character U+{ord(m.group()):04X}"
        raise TranscriptError(path, line, f"contains {what} ({name}): a binary file, not a text transcript")
    return text
