"""The one place that puts a config value into text another program reads.

Every context netstab writes into has its function here, and nothing else in `components/` quotes
for a context or imports `shlex`: a renderer or component that needs a config value in a script,
a YAML document, an nft file, a file name, an authorized_keys line or a command shown to a person
calls one of these. tests/render/test_quoting.py guards it (an AST scan of components/ fails on a
`shlex` import or a `.match` of a config grammar outside this rule), and its property test feeds
hostile strings into every string field of the schema and parses what comes out.

Config values are already held to a whole-match grammar at the edge (components/config/fields.py),
so most of them need no escaping at all; these functions make the second line of defence explicit
and refuse (ValueError) what a context cannot hold rather than writing it broken.

- `word`: one shell word (`'...'`), safe anywhere a word goes, redirect targets included.
- `in_double_quotes`: text placed inside an existing "..." (escapes `\\ $ \\` "`).
- `heredoc`: a quoted here-document whose delimiter cannot occur in the body.
- `yaml_scalar`: a YAML double-quoted scalar (JSON strings are YAML scalars).
- `nft_string`: an nft "..." string (nft has no escapes: a quote or a newline is refused).
- `file_name`: one path component (no `/`, no `..`, no control characters).
- `authorized_key`: one authorized_keys line (a newline would add a key or a `command=` line).
- `for_person`: a command line a person copies: every argument a shell word.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable

# Control characters (C0, DEL, C1): no context netstab writes into wants them from config.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _text(value: object) -> str:
    text = str(value)
    if "\x00" in text:
        raise ValueError("a NUL byte cannot be passed to a shell, a file or a YAML document")
    return text


def word(value: object) -> str:
    """`value` as exactly one shell word, whatever it holds (POSIX single quotes)."""
    return shlex.quote(_text(value))


def words(values: Iterable[object]) -> str:
    """Each value one shell word, separated by spaces."""
    return " ".join(word(v) for v in values)


def in_double_quotes(value: object) -> str:
    """`value` as literal text inside a double-quoted shell string: `\\`, `$`, `` ` `` and `"` escaped."""
    return re.sub(r'([\\$`"])', r"\\\1", _text(value))


def heredoc(body: str, delimiter: str = "NETSTAB_EOF") -> str:
    """`<<'DELIM'`, a newline, `body` and the closing line: the end of a command whose stdin is this
    literal here-document. Nothing in it expands; a body line equal to the delimiter (which would
    end it early and run the rest as commands) is refused."""
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", delimiter):
        raise ValueError(f"{delimiter!r} is not a here-document delimiter")
    text = _text(body)
    if delimiter in text.split("\n"):
        raise ValueError(f"the here-document body holds its own delimiter line {delimiter}")
    return f"<<'{delimiter}'\n{text}{'' if not text or text.endswith(chr(10)) else chr(10)}{delimiter}\n"


def yaml_scalar(value: object) -> str:
    """`value` as one YAML double-quoted scalar (a JSON string, which YAML reads as the same text)."""
    return json.dumps(_text(value))


def nft_string(value: object) -> str:
    """`value` as an nft quoted string (comments, set names): nft has no escape, so a quote, a
    backslash or a control character is refused."""
    text = _text(value)
    if '"' in text or "\\" in text or _CONTROL.search(text):
        raise ValueError(f"{text!r} cannot be an nft string (a quote, a backslash or a control character)")
    return f'"{text}"'


def file_name(value: object) -> str:
    """`value` as one path component: refused when it could leave its folder or split a line."""
    text = _text(value)
    if not text or text in (".", "..") or "/" in text or text.startswith("-") or _CONTROL.search(text) or len(text.encode()) > 255:
        raise ValueError(f"{text!r} cannot be a file name")
    return text


def authorized_key(value: object) -> str:
    """`value` as one authorized_keys line: a line break would add another key or a `command=` line."""
    text = _text(value).strip()
    if not text or _CONTROL.search(text):
        raise ValueError("an authorized key must be one line without control characters")
    return text


def for_person(*argv: object) -> str:
    """A command a person copies into a shell: each argument one word, so pasting runs exactly it."""
    return " ".join(word(a) for a in argv)
