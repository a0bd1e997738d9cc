"""What a name may hold where it enters onebench (a registered model or backend, a record read back):
printable text only, because names reach terminals, logs and file names. A name with an escape sequence
could repaint a terminal; one with a newline forges a second log line."""

from __future__ import annotations

import re
import unicodedata

# a registered name: letters, digits and the joiners timm and our own names use; it becomes a file name part
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+@-]{0,99}")
NAME_RULE = "1-100 characters of letters, digits and _ . : + @ -, starting with a letter or digit"


def check_name(kind: str, name: object) -> str:
    """`name` if it is a valid name of `kind`, else ValueError in one line (the name escaped)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"{kind} name '{printable(str(name))}' is not valid: a name is {NAME_RULE}")
    return name


def control_chars(text: str) -> list[str]:
    """The control and format characters in `text` (ESC, newline, NUL, bidi overrides...), in order."""
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


def printable(text: str, keep: str = "") -> str:
    """`text` with every control character written as an escape (`\\x1b`), so nothing reaches a terminal
    or a log raw; characters in `keep` (for example a newline in a multi-line message) pass."""
    if not any(c not in keep and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        return text
    return "".join(c if c in keep or unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp")
                   else c.encode("unicode_escape").decode("ascii") for c in text)
