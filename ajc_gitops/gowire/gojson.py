"""The parts of Go's ``encoding/json`` (Go 1.19.8) that the record codec needs.

Why not Python's ``json``: Go checks the whole input with a byte-level state machine before
decoding anything, nests up to 10000 levels (``json`` recurses and dies near 1000), rejects a
BOM (``json.loads(bytes)`` eats it), replaces each invalid UTF-8 byte and each lone surrogate
escape with U+FFFD (Python's ``replace`` handler merges a truncated sequence into one), and has
its own error texts. This module copies Go's scanner (``scanner.go``), ``unquoteBytes``
(``decode.go``), string escaping (``encode.go``) and float formatting byte for byte.

Strings on the Go side are bytes; here a Go string is a ``str`` whose invalid UTF-8 bytes are
lone surrogates U+DC80..U+DCFF (Python's ``surrogateescape``), see :func:`go_bytes`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

MAX_DEPTH = 10_000  # scanner.go maxNestingDepth


class GoSyntaxError(ValueError):
    """``*json.SyntaxError``; ``str()`` is Go's message, ``offset`` its byte offset."""

    def __init__(self, msg: str, offset: int) -> None:
        super().__init__(msg)
        self.offset = offset


_SHORT_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def _quote_char(c: int) -> str:
    # scanner.go quoteChar: the byte is taken as a rune (Latin-1), then strconv.Quote'd.
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    ch = chr(c)
    if c == 0x5C:
        body = "\\\\"
    elif ch.isprintable():  # same verdicts as strconv.IsPrint on U+0000..U+00FF
        body = ch
    elif c in _SHORT_ESCAPES:
        body = _SHORT_ESCAPES[c]
    elif c < 0x20 or c == 0x7F:
        body = f"\\x{c:02x}"
    else:
        body = f"\\u{c:04x}"
    return f"'{body}'"


_SPACE = frozenset(b" \t\r\n")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")
# A run of ordinary string bytes, consumed in one step for speed (same verdicts).
_PLAIN_RUN = re.compile(rb'[^"\\\x00-\x1f]+')


def check_valid(data: bytes) -> None:
    """Go's ``checkValid``: raise :class:`GoSyntaxError` exactly where Go's scanner does.

    A faithful copy of the scanner's states: each state is one branch below, named after its
    Go function. At the end Go feeds one space, so ``tru`` fails "in literal true", not with
    "unexpected end"."""
    stack: list[int] = []  # 0 object key, 1 object value, 2 array value
    state = "begin_value"
    end_top = False
    i = 0
    n = len(data)

    def err(c: int, context: str) -> GoSyntaxError:
        return GoSyntaxError(f"invalid character {_quote_char(c)} {context}", i + 1)

    while True:
        at_eof = i >= n
        if at_eof:
            if end_top:
                return
            c = 0x20
        else:
            c = data[i]
        if state == "in_string":
            if not at_eof:
                m = _PLAIN_RUN.match(data, i)
                if m:
                    i = m.end()
                    continue
            if c == 0x22:
                state = "end_value"
            elif c == 0x5C:
                state = "esc"
            elif c < 0x20:
                raise err(c, "in string literal")
        elif state == "esc":
            if c in b'bfnrt\\/"':
                state = "in_string"
            elif c == 0x75:
                state = "u0"
            else:
                raise err(c, "in string escape code")
        elif state in ("u0", "u1", "u2", "u3"):
            if c not in _HEX:
                raise err(c, "in \\u hexadecimal character escape")
            state = "in_string" if state == "u3" else "u" + str(int(state[1]) + 1)
        elif state in ("begin_value", "begin_value_or_empty", "begin_string_or_empty",
                       "begin_string"):  # fmt: skip
            if c in _SPACE:
                pass
            elif state == "begin_value_or_empty" and c == 0x5D:
                state = _end_value(stack, c, err)
            elif state == "begin_string_or_empty" and c == 0x7D:
                stack[-1] = 1
                state = _end_value(stack, c, err)
            elif state in ("begin_string_or_empty", "begin_string"):
                if c != 0x22:
                    raise err(c, "looking for beginning of object key string")
                state = "in_string"
            elif c in b"{[":
                stack.append(0 if c == 0x7B else 2)
                if len(stack) > MAX_DEPTH:
                    raise err(c, "exceeded max depth")
                state = "begin_string_or_empty" if c == 0x7B else "begin_value_or_empty"
            elif c == 0x22:
                state = "in_string"
            elif c == 0x2D:
                state = "neg"
            elif c == 0x30:
                state = "zero"
            elif 0x31 <= c <= 0x39:
                state = "one"
            elif c in b"tfn":
                state = {0x74: "true", 0x66: "false", 0x6E: "null"}[c] + ":1"
            else:
                raise err(c, "looking for beginning of value")
        elif state == "neg":
            if c == 0x30:
                state = "zero"
            elif 0x31 <= c <= 0x39:
                state = "one"
            else:
                raise err(c, "in numeric literal")
        elif state in ("one", "zero", "dot0", "exp0"):
            if state != "zero" and c in _DIGITS:
                pass
            elif state in ("one", "zero") and c == 0x2E:
                state = "dot"
            elif state != "exp0" and c in b"eE":
                state = "exp"
            else:
                state = _end_value(stack, c, err)
        elif state == "dot":
            if c not in _DIGITS:
                raise err(c, "after decimal point in numeric literal")
            state = "dot0"
        elif state in ("exp", "exp_sign"):
            if state == "exp" and c in b"+-":
                state = "exp_sign"
            elif c in _DIGITS:
                state = "exp0"
            else:
                raise err(c, "in exponent of numeric literal")
        elif state == "end_value":
            state = _end_value(stack, c, err)
        elif state == "end_top":
            if c not in _SPACE:
                raise err(c, "after top-level value")
        else:  # inside true/false/null: "word:k" expects word[k]
            word, k = state.split(":")
            if c != ord(word[int(k)]):
                raise err(c, f"in literal {word} (expecting {_quote_char(ord(word[int(k)]))})")
            state = "end_value" if int(k) + 1 == len(word) else f"{word}:{int(k) + 1}"
        if state == "end_top":
            end_top = True
        if at_eof:
            if end_top:
                return
            raise GoSyntaxError("unexpected end of JSON input", n)
        i += 1


def _end_value(stack: list[int], c: int, err: Callable[[int, str], GoSyntaxError]) -> str:
    # scanner.go stateEndValue; returns the next state.
    if not stack:
        if c not in _SPACE:
            raise err(c, "after top-level value")
        return "end_top"
    if c in _SPACE:
        return "end_value"
    top = stack[-1]
    if top == 0:
        if c == 0x3A:
            stack[-1] = 1
            return "begin_value"
        raise err(c, "after object key")
    if top == 1:
        if c == 0x2C:
            stack[-1] = 0
            return "begin_string"
        if c == 0x7D:
            stack.pop()
            return "end_top" if not stack else "end_value"
        raise err(c, "after object key:value pair")
    if c == 0x2C:
        return "begin_value"
    if c == 0x5D:
        stack.pop()
        return "end_top" if not stack else "end_value"
    raise err(c, "after array element")


# ---- helpers for the decode pass, which only ever sees input check_valid accepted ----

_STRING_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_LITERAL_TOKEN = re.compile(rb"[-+.0-9eE]+|true|false|null")


def skip_space(data: bytes, i: int) -> int:
    while i < len(data) and data[i] in _SPACE:
        i += 1
    return i


def value_end(data: bytes, i: int) -> int:
    """End offset of the (valid) value starting at ``data[i]``; iterative, any depth."""
    c = data[i]
    if c == 0x22:
        m = _STRING_TOKEN.match(data, i)
        assert m is not None
        return m.end()
    if c not in b"[{":
        m = _LITERAL_TOKEN.match(data, i)
        assert m is not None
        return m.end()
    depth = 0
    while True:
        c = data[i]
        if c == 0x22:
            m = _STRING_TOKEN.match(data, i)
            assert m is not None
            i = m.end()
            continue
        if c in b"[{":
            depth += 1
        elif c in b"]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1


def unquote(token: bytes) -> str:
    """Go's ``unquoteBytes`` of a valid string token, as a ``str``. Invalid UTF-8 becomes one
    U+FFFD per byte, and an escaped surrogate that is not half of a valid pair U+FFFD."""
    body = token[1:-1]
    if b"\\" in body:
        body = _unescape(body)
    # surrogateescape decodes each invalid byte on its own, which is Go's per-byte rule.
    text = body.decode("utf-8", "surrogateescape")
    return _LONE_ESCAPES.sub("\ufffd", text)


_LONE_ESCAPES = re.compile("[\udc80-\udcff]")
_SIMPLE = {ord("b"): b"\b", ord("f"): b"\f", ord("n"): b"\n", ord("r"): b"\r",
           ord("t"): b"\t"}  # fmt: skip


def _unescape(body: bytes) -> bytes:
    out = bytearray()
    i = 0
    n = len(body)
    while i < n:
        j = body.find(b"\\", i)
        if j < 0:
            out += body[i:]
            break
        out += body[i:j]
        e = body[j + 1]
        if e != 0x75:
            out += _SIMPLE.get(e, bytes([e]))
            i = j + 2
            continue
        r = int(body[j + 2 : j + 6], 16)
        i = j + 6
        if 0xD800 <= r < 0xE000:
            r2 = int(body[i + 2 : i + 6], 16) if body[i : i + 2] == b"\\u" else -1
            if 0xD800 <= r < 0xDC00 and 0xDC00 <= r2 < 0xE000:
                r = 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00)
                i += 6
            else:
                r = 0xFFFD
        out += chr(r).encode()
    return bytes(out)


# ---- encoding ----


def go_bytes(s: str) -> bytes:
    """The Go string a ``str`` stands for: U+DC80..U+DCFF are the raw bytes 0x80..0xFF
    (``surrogateescape``); any other lone surrogate is its 3-byte (invalid) UTF-8 form, which
    Go's encoder then turns into three U+FFFD."""
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        pass
    out = bytearray()
    for ch in s:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:
            out.append(o - 0xDC00)
        else:
            out += ch.encode("utf-8", "surrogatepass")
    return bytes(out)


_SAFE = frozenset(b for b in range(0x20, 0x80) if b not in b'"\\<>&')
_HEXDIGITS = "0123456789abcdef"
_JS_SEPARATORS = {b"\xe2\x80\xa8": b"\\u2028", b"\xe2\x80\xa9": b"\\u2029"}


def encode_string(raw: bytes) -> bytes:
    """``encodeState.string(s, escapeHTML=true)`` of Go 1.19: the quoted JSON string."""
    out = bytearray(b'"')
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b < 0x80:
            if b in _SAFE:
                out.append(b)
            elif b in b'\\"':
                out += b"\\" + bytes([b])
            elif b in (0x0A, 0x0D, 0x09):
                out += {0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t"}[b]
            else:  # controls, and <, >, & for HTML safety
                out += f"\\u00{_HEXDIGITS[b >> 4]}{_HEXDIGITS[b & 0xF]}".encode()
            i += 1
            continue
        size = _utf8_rune_len(raw, i)
        if size == 0:
            out += b"\\ufffd"
            i += 1
            continue
        rune = raw[i : i + size]
        out += _JS_SEPARATORS.get(rune, rune)  # U+2028/2029 break JavaScript, so escaped
        i += size
    out.append(0x22)
    return bytes(out)


def _utf8_rune_len(raw: bytes, i: int) -> int:
    # Length of the valid UTF-8 sequence at raw[i] (first byte >= 0x80), or 0 if invalid.
    for size in (2, 3, 4):
        try:
            raw[i : i + size].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return size
    return 0


def format_float(f: float) -> str:
    """Go's ``floatEncoder`` for float64: shortest digits, ``'f'`` unless the magnitude is
    below 1e-6 or at least 1e21, then ``'e'`` with ``e-07`` cleaned up to ``e-7``."""
    digits, point = _shortest(f)
    sign = "-" if str(f).startswith("-") else ""
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp = point - 1
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}".replace("e-0", "e-")
    if point <= 0:
        return sign + ("0." + "0" * -point + digits if digits else "0")
    if point >= len(digits):
        return sign + (digits + "0" * (point - len(digits)) if digits else "0")
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _shortest(f: float) -> tuple[str, int]:
    # repr() gives the shortest round-tripping digits, as strconv's -1 precision does.
    # Returns (digits without leading/trailing zeros, decimal point position).
    text = repr(abs(f))
    mant, _, exp = text.partition("e")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + (int(exp) if exp else 0) - (len(whole + frac) - len(digits))
    digits = digits.rstrip("0")
    return digits, point if digits else 0
