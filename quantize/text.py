"""Text that stays on one line and valid Unicode, whatever a file is named.

A file name may hold a newline, control characters, or bytes that are not
UTF-8 (Python keeps those as lone surrogates, U+DC80 to U+DCFF, its
``surrogateescape`` convention).  Printed as they are, they break the one
line per message that scripts parse; written to JSON, they make strings
that are not valid Unicode.
"""

from __future__ import annotations

import re
from typing import Any

# Lone surrogates: undecodable file-name bytes, or worse.
_SURROGATES = re.compile("[\ud800-\udfff]")
# What must not reach a terminal or a log line as it is: C0 and C1 control
# characters (newline, carriage return, escape ...), Unicode line and
# paragraph separators, and lone surrogates.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # the byte that was not UTF-8
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """``text`` with every control character and undecodable byte escaped.

    Used for every message quantize prints, so that each stays one line.

    Examples
    --------
    >>> one_line("new\\nline.png: bad")
    'new\\\\nline.png: bad'
    >>> one_line(b"caf\\xe9.png".decode("utf-8", "surrogateescape"))
    'caf\\\\xe9.png'
    """
    return _UNPRINTABLE.sub(_escape, text)


def valid_unicode(text: str) -> str:
    """``text`` with undecodable file-name bytes written as ``\\xNN``.

    Other lone surrogates become ``\\uNNNN``.  The result encodes to valid
    UTF-8; everything else, newlines included, is kept (JSON escapes it), so
    a name that is valid UTF-8 is stored exactly.

    Examples
    --------
    >>> valid_unicode(b"caf\\xe9.png".decode("utf-8", "surrogateescape"))
    'caf\\\\xe9.png'
    """
    return _SURROGATES.sub(_escape, text)


def json_safe(value: Any) -> Any:
    """``value`` (JSON-ready dicts, lists, strings ...) with every string made valid Unicode."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
