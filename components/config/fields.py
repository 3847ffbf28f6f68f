"""Field types of the stack config: how a YAML value is read, what a wrong one is told, and its JSON Schema.

Each type is a `Check`: a conversion that raises ValueError (optionally with a reason) and the
words that complete "<value> is not ...". Validation and the published schema come from the same
object, so the two cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

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


def matching(expected: str, regex: re.Pattern[str], max_length: int | None = None) -> Check:
    """A string that matches `regex` (and is at most `max_length` long)."""

    def convert(value: Any) -> str:
        if not isinstance(value, str) or (max_length is not None and len(value) > max_length) or not regex.match(value):
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


HTTPS_URL = re.compile(r"^https://[^\s/]+(/\S*)?$")


def https_url(expected: str) -> Check:
    return matching(expected, HTTPS_URL)


HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def hostname(expected: str) -> Check:
    return matching(expected, HOSTNAME)


K3sVersion = Annotated[str, matching("a K3s release such as v1.33.5+k3s1", re.compile(r"^v\d+\.\d+\.\d+\+k3s\d+$"))]


# A host key to pin (pulumi-command connection.hostKey): authorized_keys format. Not RSA: pulumi-command
# offers only the pinned key's type, `ssh-rsa` (SHA-1) for RSA, which a current OpenSSH refuses.
HOST_KEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( \S.*)?$")


def _host_key(value: Any) -> str:
    if isinstance(value, str) and value.startswith("ssh-rsa "):
        raise ValueError("RSA host keys cannot be pinned: pulumi-command would offer only ssh-rsa (SHA-1), which current sshd refuses; "
                         "use the host's ed25519 key: ssh-keyscan -t ed25519 HOST")
    if not isinstance(value, str) or not HOST_KEY.match(value.strip()):
        raise ValueError("")
    return value.strip()


HostKey = Annotated[str, Check("an SSH host key line such as 'ssh-ed25519 AAAA...' (ssh-keyscan -t ed25519 HOST)", _host_key,
                               {"type": "string", "pattern": HOST_KEY.pattern})]
