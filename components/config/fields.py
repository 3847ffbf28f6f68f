"""Field types of the stack config: how a YAML value is read, what a wrong one is told, and its JSON Schema.

Each type is a `Check`: a conversion that raises ValueError (optionally with a reason) and the
words that complete "<value> is not ...". Validation and the published schema come from the same
object, so the two cannot drift apart.

Every string field has the narrowest grammar that fits what it names, matched whole (`fullmatch`:
a `$` alone would let a trailing newline through), ASCII only; URLs are parsed and their host must
be a host name or an IP literal. The schema's patterns are the same regexes (`^...$` reads whole
there: ECMAScript's `$` does not stop before a newline). What a value can still hold is then put in
a script, a YAML document or a file name only through components/render/quote.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The error type every translated problem carries; its context holds the finished message.
NETSTAB_ERROR = "netstab"


def show(value: Any) -> str:
    """A value as a message quotes it: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def plain(value: Any) -> str:
    """A value inside a message as it is when it is one short printable line, else as `show` quotes it:
    a message stays one line whatever the value holds."""
    return value if isinstance(value, str) and value.isprintable() and 0 < len(value) <= 60 else show(value)


def problem(message: str, at: tuple[int, ...] = ()) -> PydanticCustomError:
    """A finished message; `at` locates it inside the value (an item of a list) when it is about one part."""
    return PydanticCustomError(NETSTAB_ERROR, "{message}", {"message": message, "at": at})


class Refused(ValueError):
    """A value of the right type that a rule refuses: its message replaces "<value> is not <expected>"."""

    def __init__(self, message: str, at: tuple[int, ...] = ()):
        super().__init__(message)
        self.at = at


@dataclass(frozen=True, eq=False)  # hashed by identity: typing hashes Annotated metadata
class Check:
    """A field type: `convert` reads the raw value or raises ValueError/TypeError (its text, if any, is the reason)."""

    expected: str  # completes "<value> is not ...", and names the type in stacks/README.md
    convert: Callable[[Any], Any]
    schema: dict[str, Any] = field(default_factory=dict)

    def read(self, value: Any) -> Any:
        try:
            return self.convert(value)
        except Refused as exc:
            raise problem(str(exc), exc.at) from None
        except (ValueError, TypeError) as exc:
            reason = f" ({exc})" if str(exc) else ""
            raise problem(f"{show(value)} is not {self.expected}{reason}") from None

    def then(self, refine: Callable[[Any], Any], **schema: Any) -> Check:
        """This check, then `refine` on what it read: a rule about the value itself (raising Refused)."""
        return Check(self.expected, lambda value: refine(self.convert(value)), {**self.schema, **schema})

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.read)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return dict(self.schema)


def grammar(pattern: str) -> re.Pattern[str]:
    """A field grammar: ASCII classes (Python's `\\d` and `\\w` also match other scripts' digits and letters)."""
    return re.compile(pattern, re.ASCII)


def matching(expected: str, regex: re.Pattern[str], max_length: int | None = None) -> Check:
    """A string that `regex` matches whole (and at most `max_length` long)."""

    def convert(value: Any) -> str:
        if not isinstance(value, str) or (max_length is not None and len(value) > max_length) or not regex.fullmatch(value):
            raise ValueError("")
        return value

    schema: dict[str, Any] = {"type": "string", "pattern": regex.pattern}
    if max_length is not None:
        schema["maxLength"] = max_length
    return Check(expected, convert, schema)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("")
    return value


# Numbers and booleans must be YAML's own, as the schema says: the engine hands structured config over
# as parsed JSON (pulumi.Config.get_object), and `pulumi config set --path KEY 1400` / `true` already
# stores an int / a bool (pulumi/pulumi sdk/go/common/resource/config/map.go, adjustObjectValue), so
# text here is a value written in quotes.
QUOTED = "quoted, it is text: write it without quotes"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        raise ValueError(QUOTED)
    raise ValueError("")


def _ip(value: Any) -> IPAddress:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):  # built in Python
        return value
    if not isinstance(value, str):
        raise ValueError("")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("") from None  # its own wording ("does not appear to be an IPv4 or IPv6 address") repeats ours


def _network(value: Any) -> IPNetwork:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):  # built in Python
        return value
    if not isinstance(value, str) or "/" not in value:
        raise ValueError("")
    return ipaddress.ip_network(value, strict=True)


def string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("")
    return tuple(value)


Text = Annotated[str, Check("a non-empty string", _text, {"type": "string", "minLength": 1})]
Bool = Annotated[bool, Check("true or false", _bool, {"type": "boolean"})]
IP_ADDRESS = Check("an IP address", _ip, {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})
IP = Annotated[IPAddress, IP_ADDRESS]
CIDR_NETWORK = Check("a CIDR such as 10.27.27.0/24", _network, {"type": "string", "pattern": r"^[0-9A-Fa-f.:]+/\d{1,3}$"})
CIDR = Annotated[IPNetwork, CIDR_NETWORK]
STRING_ITEMS = {"type": "array", "items": {"type": "string", "minLength": 1}}


def between(low: int, high: int) -> Check:
    """An integer in low..high (a YAML integer: quoted digits are text, as the schema says)."""

    def convert(value: Any) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            raise ValueError(QUOTED)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("")
        number = int(value)
        if not low <= number <= high:
            raise ValueError("")
        return number

    return Check(f"an integer in {low}..{high}", convert, {"type": "integer", "minimum": low, "maximum": high})


def one_of(choices: tuple[str, ...]) -> Check:
    def convert(value: Any) -> str:
        if value not in choices:
            raise ValueError("")
        return str(value)

    return Check(f"one of {', '.join(choices)}", convert, {"enum": list(choices)})


# A DNS host name: dot-separated labels of letters, digits and inner '-' (253 characters at most).
LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DNS_NAME = grammar(rf"^(?=.{{1,253}}$){LABEL}(\.{LABEL})*\.?$")
# What may follow the host in a URL: a path and a query of unreserved characters, '%' escapes and
# the few delimiters such URLs use; no quote, '$', '`', '\', space, '(', ')', ';' or '#'.
URL_TAIL = r"(/[A-Za-z0-9._~%/:@&=+?-]*)?"
HTTPS_URL = grammar(rf"^https://({LABEL}(\.{LABEL})*|\[[0-9A-Fa-f:.]+\])(:[0-9]{{1,5}})?{URL_TAIL}$")


def is_host(text: str) -> bool:
    """A host name or an IP literal (IPv6 bare, as ssh takes it)."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return bool(DNS_NAME.fullmatch(text)) and not re.fullmatch(r"[0-9.]+", text)  # 10.0.0.300 is no name either


def https_url(expected: str) -> Check:
    """An https:// URL, parsed: its host a host name or an IP literal ([v6] bracketed), a valid port, no user info."""

    def convert(value: Any) -> str:
        if not isinstance(value, str) or len(value) > 2048 or not HTTPS_URL.fullmatch(value):
            raise ValueError("")
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:  # above 65535
            port = 0
        if port == 0:
            raise ValueError(f"{value} has no valid host and port")
        host = parts.hostname or ""
        if not is_host(host):
            raise ValueError(f"{host or 'no host'} is not a host name or an IP address")
        return value

    return Check(expected, convert, {"type": "string", "pattern": HTTPS_URL.pattern, "maxLength": 2048})


HOSTNAME = grammar(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def hostname(expected: str) -> Check:
    return matching(expected, HOSTNAME)


def _host(value: Any) -> str:
    if not isinstance(value, str) or not is_host(value):
        raise ValueError("")
    return value


# A host to dial over SSH: a DNS name or an IP address.
Host = Annotated[str, Check("a host name or an IP address such as pve.lan or 10.27.27.1", _host,
                            {"type": "string", "anyOf": [{"pattern": DNS_NAME.pattern}, {"format": "ipv4"}, {"format": "ipv6"}]})]
# A login name as Debian's adduser takes it (NAME_REGEX), at most 32 characters (useradd).
UserName = Annotated[str, matching("a user name such as ubuntu (lowercase letters, digits, '_', '-')",
                                   grammar(r"^[a-z_][a-z0-9_-]*$"), 32)]
# A Proxmox node name and storage id, as pve-common's JSONSchema formats pve-node and pve-storage-id accept them.
PveNode = Annotated[str, matching("a Proxmox node name such as pve", grammar(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$"), 63)]
PveStorage = Annotated[str, matching("a Proxmox storage id such as local-lvm", grammar(r"^[A-Za-z][A-Za-z0-9._-]*[A-Za-z0-9]$"), 64)]
# A Linux network interface name: at most 15 characters (IFNAMSIZ), no '/', ':' or white space.
Interface = Annotated[str, matching("a network interface name such as vmbr0", grammar(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"), 15)]
# One file name (no folder): what Proxmox stores a download as.
FILE_NAME = grammar(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")
FileName = Annotated[str, matching("a file name such as noble-server-cloudimg-amd64.img (letters, digits, '.', '_', '+', '-')", FILE_NAME, 255)]
# A local file path (relative or absolute) of letters, digits and . _ + - /.
FilePath = grammar(r"^[A-Za-z0-9_./+-]+$")


K3sVersion = Annotated[str, matching("a K3s release such as v1.33.5+k3s1", grammar(r"^v\d+\.\d+\.\d+\+k3s\d+$"))]


# A host key to pin (pulumi-command connection.hostKey): authorized_keys format. Not RSA: pulumi-command
# offers only the pinned key's type, `ssh-rsa` (SHA-1) for RSA, which a current OpenSSH refuses.
# A key line's comment: words such as root@pve, of letters, digits and @ . _ + = : , / - (no quote,
# '$', '`', ';' or line break: the line is matched whole).
KEY_COMMENT = r"( [A-Za-z0-9@._+=:,/-]+)*"
COMMENT_RULE = "one line; its comment only words of letters, digits and @ . _ + = : , / -"


def key_line_reason(line: str, grammar_: re.Pattern[str]) -> str:
    """Why a key line that starts like a key is refused (its comment or a second line), else ''."""
    head = " ".join(line.split(" ")[:2])
    return COMMENT_RULE if grammar_.fullmatch(head) and head != line else ""
HOST_KEY = grammar(rf"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={{0,3}}{KEY_COMMENT}$")


def _host_key(value: Any) -> str:
    if isinstance(value, str) and value.startswith("ssh-rsa "):
        raise ValueError("RSA host keys cannot be pinned: pulumi-command would offer only ssh-rsa (SHA-1), which current sshd refuses; "
                         "use the host's ed25519 key: ssh-keyscan -t ed25519 HOST")
    if not isinstance(value, str) or not HOST_KEY.fullmatch(value.strip()):
        raise ValueError(key_line_reason(value.strip(), HOST_KEY) if isinstance(value, str) else "")
    return value.strip()


HostKey = Annotated[str, Check("an SSH host key line such as 'ssh-ed25519 AAAA...' (ssh-keyscan -t ed25519 HOST)", _host_key,
                               {"type": "string", "pattern": HOST_KEY.pattern})]
