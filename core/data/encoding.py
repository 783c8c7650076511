"""Decode the bytes of a text data file, and reject files that are not text.

Detection order:

1. A byte order mark selects UTF-8, UTF-16 or UTF-32 (little or big endian).
2. Known binary signatures (ZIP, which includes Excel .xlsx, gzip, PDF, images,
   Parquet, old Excel .xls) are rejected with a message that names the kind.
3. Text without a byte order mark whose odd or even bytes are mostly NUL is
   read as UTF-16 (LE or BE), with a warning.
4. Any other NUL byte means the file is binary.
5. Strict UTF-8; when that fails, Windows-1252 (cp1252), with a warning that
   names the first byte that is not UTF-8.
6. Decoded text whose sample is more than 1% control characters is rejected as
   binary, because cp1252 decodes most random bytes without error.
"""

from __future__ import annotations

import codecs
import logging
from dataclasses import dataclass

from halluscope.data.errors import DataFormatError

logger = logging.getLogger(__name__)

SAMPLE_BYTES = 64 * 1024
MAX_CONTROL_CHAR_FRACTION = 0.01

# Ordered so that the UTF-32 LE mark (FF FE 00 00) wins over the UTF-16 LE mark (FF FE).
_BYTE_ORDER_MARKS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file (for example an Excel .xls workbook)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"),
)

_TEXT_FIX = "Save the data as UTF-8 text (CSV, TSV or JSON Lines) and upload that file."


@dataclass(frozen=True)
class DecodedText:
    """Text decoded from a file, with the encoding that was used.

    Attributes:
        text: The decoded text, without a byte order mark.
        encoding: The Python codec name that decoded it, for example ``"utf-8-sig"``.
        warnings: Notes for the user, such as a fallback to cp1252.
    """

    text: str
    encoding: str
    warnings: tuple[str, ...] = ()


def decode_text(data: bytes, file_name: str) -> DecodedText:
    """Decode ``data`` with the detected encoding, following the order in the module docstring.

    Args:
        data: The raw file content.
        file_name: The file name, used in messages.

    Returns:
        The decoded text, the codec name and any warnings.

    Raises:
        DataFormatError: The file is binary or cannot be decoded.
    """
    for mark, encoding in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return DecodedText(_decode_strict(data[len(mark) :], encoding, file_name), encoding)

    for signature, kind in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise DataFormatError(
                f"the file is not text: it starts like {kind}.", file_name=file_name, fix=_TEXT_FIX
            )

    utf16 = _guess_utf16_without_mark(data[:SAMPLE_BYTES])
    if utf16 is not None:
        text = _decode_strict(data, utf16, file_name)
        note = (
            f"The file has no byte order mark but looks like {utf16.upper()}; it was read as such."
        )
        return DecodedText(_check_not_binary(text, file_name), utf16, (note,))

    nul_at = data.find(b"\x00")
    if nul_at >= 0:
        raise DataFormatError(
            f"the file is not text: it contains a NUL byte at offset {nul_at}.",
            file_name=file_name,
            fix=_TEXT_FIX,
        )

    try:
        return DecodedText(_check_not_binary(data.decode("utf-8"), file_name), "utf-8")
    except UnicodeDecodeError as error:
        bad_offset = error.start

    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as error:
        raise DataFormatError(
            f"the file is neither UTF-8 nor Windows-1252 (cp1252) text: byte "
            f"0x{data[error.start]:02x} at offset {error.start} is invalid in both.",
            file_name=file_name,
            fix=_TEXT_FIX,
        ) from error
    note = (
        f"The file is not valid UTF-8 (byte 0x{data[bad_offset]:02x} at offset {bad_offset}), "
        "so it was read as Windows-1252 (cp1252). Check accented characters; "
        "save the file as UTF-8 to avoid this."
    )
    logger.info("%s: not UTF-8, read as cp1252", file_name)
    return DecodedText(_check_not_binary(text, file_name), "cp1252", (note,))


def _decode_strict(data: bytes, encoding: str, file_name: str) -> str:
    """Decode with ``encoding`` and raise DataFormatError naming the offset on failure."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise DataFormatError(
            f"the file looks like {encoding.upper()} text, but the bytes at offset "
            f"{error.start} are invalid in that encoding ({error.reason}).",
            file_name=file_name,
            fix=_TEXT_FIX,
        ) from error


def _guess_utf16_without_mark(sample: bytes) -> str | None:
    """Return ``"utf-16-le"`` or ``"utf-16-be"`` when NUL bytes sit on one byte parity, else None.

    Text that is mostly ASCII has a NUL high byte in every UTF-16 code unit, at
    odd offsets for little endian and at even offsets for big endian.
    """
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even_nul = sample[0 : 2 * pairs : 2].count(0)
    odd_nul = sample[1 : 2 * pairs : 2].count(0)
    if odd_nul >= 0.4 * pairs and even_nul <= 0.05 * pairs:
        return "utf-16-le"
    if even_nul >= 0.4 * pairs and odd_nul <= 0.05 * pairs:
        return "utf-16-be"
    return None


def _check_not_binary(text: str, file_name: str) -> str:
    """Return ``text``, or raise DataFormatError when its sample has too many control characters."""
    sample = text[:SAMPLE_BYTES]
    if not sample:
        return text
    control = sum(1 for char in sample if (char < " " and char not in "\t\n\r") or char == "\x7f")
    if control > MAX_CONTROL_CHAR_FRACTION * len(sample):
        raise DataFormatError(
            f"the file does not look like text: {control} of its first {len(sample)} "
            "characters are control characters.",
            file_name=file_name,
            fix=_TEXT_FIX,
        )
    return text
