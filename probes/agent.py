#!/usr/bin/env python3
"""netstab probe agent: evidence about a node's egress path, standard library only (Python 3.8+).

Runs on a node as `python3 - SUBCOMMAND ARGS < agent.py`, or by hand as `python3 agent.py ...`.

  http URL...          timed HTTP(S) requests, one duration per phase (dns, connect, tls, ttfb, total)
  pull IMAGE...        a registry-API pull without a container runtime (or `--runtime crictl`)
  mss-sweep HOST[:P]   finds the largest TCP MSS at which TLS handshakes complete: PMTU black holes
  facts                hostname, interfaces and MTUs, default routes, resolvers, tcp_mtu_probing

Every failed attempt gets exactly one class from FAILURE_CLASSES. Output is a table, or with
--json one `netstab.probe/v1` document. Exit 0: every attempt succeeded; 1: any failed; 2: usage.

Timeouts: --timeout bounds a whole attempt (resolve, connect, TLS, the complete response). Within
it, a TLS handshake may take ten times the attempt's TCP connect time, at least one second: a
handshake needs one or two round trips and the server's work, a lost segment a retransmission
of 200 ms or more, while across a PMTU black hole it never finishes.

Sections, in file order:
  classes and limits    FAILURE_CLASSES, the handshake timeout rule
  redaction             secrets never reach the output, whatever their spelling
  kernel evidence       TCP_INFO of a connection
  one HTTP exchange     Options, Deadline, Reader, Response, exchange()
  records               one attempt's record, always the same shape
  http                  run_http
  pull                  ImageRef, Puller, run_pull
  mss-sweep             Sweep, sweep_verdict, Tracepath, run_sweep
  facts                 the host's network facts
  output                Collector, summarize, document, table
  command line          every argument checked before the first packet, main
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import math
import os
import platform
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, Iterator, List, NoReturn, Optional, Tuple
from urllib.parse import urlencode, urljoin, urlsplit

SCHEMA = "netstab.probe/v1"
AGENT_VERSION = "1.1"
USER_AGENT = "netstab-probe/" + AGENT_VERSION

# ---------------------------------------------------------------- classes and limits

# The fixed set of failure classes. Each failed attempt carries exactly one.
FAILURE_CLASSES = {
    "dns_error": "the name did not resolve (or resolution timed out)",
    "connect_timeout": "no TCP connection within the timeout (SYN unanswered)",
    "connect_refused": "the remote host refused the TCP connection",
    "connect_error": "TCP connection failed otherwise (unreachable network or host)",
    "tls_handshake_timeout": "TCP connected, the TLS handshake did not finish in time: a PMTU black hole (or a stalled server)",
    "tls_certificate": "the server's certificate is untrusted, expired or for another name",
    "tls_error": "the TLS handshake or the encrypted stream failed otherwise (protocol, alert, reset)",
    "read_timeout": "connected and sent, but the complete response did not arrive before the deadline",
    "bad_response": "the response is not valid HTTP (status line, length, chunking) or broke off before its end",
    "http_status": "a response arrived with a status outside the expected set",
    "digest_mismatch": "pull: downloaded content does not match its sha256 digest",
    "registry_error": "pull: the registry answered something the pull cannot use (auth, manifest, platform)",
    "runtime_error": "pull --runtime: the container runtime failed for another reason",
}
PHASES = ("dns", "connect", "tls", "ttfb", "total")
HANDSHAKE_FLOOR_S = 1.0
HANDSHAKE_RTT_MULTIPLE = 10
MAX_LINE = 65536
MAX_HEADER_LINES = 256
KEEP_BYTES = 4 * 1024 * 1024  # manifests, tokens, error documents: kept whole up to this size
# A blob's body gets one more second per BLOB_RATE bytes of its size: the size its manifest
# declares or its Content-Length, the smaller, and at most BLOB_STRETCH x --timeout in all (an
# hour at the default 10 s: a 2 GiB layer still passes at 600 KB/s). So a size a hostile registry
# declares cannot hold an attempt longer than that.
BLOB_RATE = 128 * 1024  # bytes/s
BLOB_STRETCH = 360
TCP_MAXSEG = getattr(socket, "TCP_MAXSEG", 2)
IP_MTU, IPV6_MTU = 14, 24
MIN_MSS = 536
MAX_MSS = 32767  # the largest TCP_MAXSEG Linux accepts (loopback's 65536 MTU would give more)


def handshake_timeout(connect_s: float, ceiling: float) -> float:
    """The bound on a TLS handshake after a TCP connect that took `connect_s` (see the docstring)."""
    return min(ceiling, max(HANDSHAKE_FLOOR_S, HANDSHAKE_RTT_MULTIPLE * connect_s))


class ProbeFailure(Exception):
    """A classified failure: `cls` is one of FAILURE_CLASSES."""

    def __init__(self, cls: str, message: str, kernel: Optional[Dict[str, int]] = None):
        super().__init__(message)
        self.cls = cls
        self.kernel = kernel
        # what was measured before the failure: phases that completed, the remote address
        self.phases: Dict[str, float] = {}
        self.remote: Optional[Tuple[str, int]] = None


# ---------------------------------------------------------------- redaction

# Header names, query and path parameters whose values are secrets (Authorization, X-Auth-Token,
# Cookie, X-Api-Key, X-Amz-Signature, X-Amz-Credential, sig, token, jsessionid, ...).
SENSITIVE = re.compile(r"(auth|cookie|token|secret|passw|key|sig|session|credential)", re.I)
REDACTED = "<redacted>"
PATH_PARAMETER = re.compile(r";([^;/=]*)=([^;/]*)")  # `;jsessionid=...` in any path segment


def redact_url(url: str) -> str:
    """Drop userinfo and the fragment (an OAuth `#access_token=` rides there; it is never sent),
    and redact sensitive query and `;k=v` path parameter values, before a URL reaches any output."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL after all: still no userinfo, no query, no fragment
        return redact_path(re.sub(r"//[^/@]*@", "//", re.split(r"[?#]", url, maxsplit=1)[0]))
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = "&".join(
        (k + "=" + REDACTED) if SENSITIVE.search(k) else (k + ("=" + v if eq else ""))
        for k, eq, v in (p.partition("=") for p in parts.query.split("&") if p)
    )
    return parts._replace(netloc=netloc, path=redact_path(parts.path), query=query, fragment="").geturl()


def redact_path(path: str) -> str:
    return PATH_PARAMETER.sub(lambda m: ";%s=%s" % (m.group(1), REDACTED if SENSITIVE.search(m.group(1)) else m.group(2)), path)


def host_of(url: str) -> str:
    """host[:port] of a URL, without userinfo."""
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


def url_secrets(url: str) -> List[str]:
    """The parts of a URL that are secrets: userinfo, sensitive query, fragment and path parameter values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [v for v in (parts.username, parts.password) if v]
    pairs = [p.partition("=") for p in (parts.query + "&" + parts.fragment).split("&")]
    found += [v for k, _, v in pairs if v and SENSITIVE.search(k)]
    found += [v for k, v in PATH_PARAMETER.findall(parts.path) if v and SENSITIVE.search(k)]
    return found


def header_secret(header: str) -> Optional[str]:
    name, sep, value = header.partition(":")
    return (value.strip() or None) if sep and SENSITIVE.search(name) else None


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Every known secret value replaced, wherever it appears (an attached `-HName: value`, an
    abbreviated option, a URL in a message), then URLs and header-like text by their form."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+", lambda m: redact_url(m.group(0)), text)
    header_form = r"(^|[\s'\"=])([A-Za-z0-9-]*%s[A-Za-z0-9-]*):[ \t]*[^'\"\n]+" % SENSITIVE.pattern
    return re.sub(header_form, r"\1\2: " + REDACTED, text, flags=re.I)


def redact_argv(argv: List[str], secrets: Iterable[str]) -> List[str]:
    return [redact_text(arg, secrets) for arg in argv]


# ---------------------------------------------------------------- kernel evidence


def tcp_info(sock: socket.socket) -> Optional[Dict[str, int]]:
    """What the kernel saw on this connection: retransmissions and the path MTU it believes in."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, "TCP_INFO", 11), 104)
        fields = struct.unpack("8B24I", raw[:104])
    except (OSError, struct.error):
        return None
    return {
        "retransmits": fields[2],
        "snd_mss": fields[10],
        "rcv_mss": fields[11],
        "unacked": fields[12],
        "lost": fields[14],
        "pmtu": fields[21],
        "rtt_us": fields[23],
        "total_retrans": fields[31],
    }


# ---------------------------------------------------------------- one HTTP exchange


@dataclass
class Options:
    """Connection settings shared by every request of a run."""

    timeout: float = 10.0
    resolve: Dict[Tuple[str, int], str] = field(default_factory=dict)
    ca_file: Optional[str] = None
    big_hello: bool = False
    mss: Optional[int] = None
    source: Optional[str] = None


class Deadline(object):
    """The end of one attempt: every blocking step gets what is left of it."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("the %.1fs deadline passed" % self.seconds)
        return remaining

    def extend(self, seconds: float) -> None:
        self.seconds += seconds
        self.at += seconds


def big_hello_alpn() -> List[str]:
    """An ALPN list that pushes the ClientHello to ~1.6 KB, like a Go >= 1.24 client's
    X25519MLKEM768 hello: the first flight no longer fits one 1400-MTU segment.
    Only `http/1.1` is a real protocol in it: this probe speaks HTTP/1.1, and a server that could
    pick `h2` (Go's net/http, as the registries run) would, by its own preference. Servers ignore
    the padding names they do not know."""
    padding = ["netstab-pad-%02d-" % i + "x" * 230 for i in range(5)]
    return ["http/1.1"] + padding


_contexts: Dict[Tuple[Optional[str], bool], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def tls_context(opts: Options) -> ssl.SSLContext:
    """One context per CA bundle and hello size, shared by every attempt: loading a trust store
    costs milliseconds of CPU that concurrent attempts would otherwise pay each time."""
    key = (opts.ca_file, opts.big_hello)
    with _contexts_lock:
        if key not in _contexts:
            ctx = ssl.create_default_context(cafile=opts.ca_file) if opts.ca_file else ssl.create_default_context()
            ctx.set_alpn_protocols(big_hello_alpn() if opts.big_hello else ["http/1.1"])
            _contexts[key] = ctx
        return _contexts[key]


def resolve(host: str, port: int, opts: Options, phases: Dict[str, float], deadline: Deadline) -> Tuple[int, str]:
    """Address family and IP for host:port, honouring --resolve; bounded by the deadline."""
    start = time.monotonic()
    pinned = opts.resolve.get((host, port))
    if pinned:
        phases["dns"] = 0.0
        return (socket.AF_INET6 if ":" in pinned else socket.AF_INET), pinned
    box: Dict[str, Any] = {}
    # bound to --source, a connection can only reach an address of the source's family
    family = 0 if not opts.source else socket.AF_INET6 if ":" in opts.source else socket.AF_INET

    def lookup() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            box["error"] = exc

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(max(0.0, deadline.at - time.monotonic()))
    phases["dns"] = ms(start)
    if worker.is_alive():
        raise ProbeFailure("dns_error", "resolving %s timed out after %.1fs" % (host, deadline.seconds))
    if "error" in box:
        raise ProbeFailure("dns_error", "resolving %s: %s" % (host, box["error"]))
    family, _, _, _, addr = box["infos"][0]
    return family, addr[0]


def connect(family: int, ip: str, port: int, opts: Options, phases: Dict[str, float], deadline: Deadline) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As curl does: without it, Nagle holds the request behind the un-ACKed TLS Finished (+1 RTT).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start = time.monotonic()
    try:
        if opts.mss:
            # Before connect: the SYN advertises this MSS, and our own segments are capped by it too.
            sock.setsockopt(socket.IPPROTO_TCP, TCP_MAXSEG, opts.mss)
        if opts.source:
            sock.bind((opts.source, 0))
        sock.settimeout(deadline.left())
        sock.connect((ip, port))
    except socket.timeout:
        sock.close()
        raise ProbeFailure("connect_timeout", "TCP connect to %s:%d did not complete within the %.1fs deadline" % (ip, port, deadline.seconds)) from None
    except ConnectionRefusedError:
        sock.close()
        raise ProbeFailure("connect_refused", "TCP connect to %s:%d refused" % (ip, port)) from None
    except OSError as exc:
        sock.close()
        raise ProbeFailure("connect_error", "TCP connect to %s:%d: %s" % (ip, port, exc.strerror or exc)) from None
    phases["connect"] = ms(start)
    return sock


def round_trip_s(sock: socket.socket, connect_s: float) -> float:
    """The path's round trip: the kernel's estimate when it has one, else the connect time. A SYN
    the kernel had to resend makes the connect take a second or more on a fast path (Linux's
    first retransmission timeout); its RTT estimate does not count that wait."""
    info = tcp_info(sock)
    rtt_s = info["rtt_us"] / 1e6 if info and info["rtt_us"] else connect_s
    return min(connect_s, rtt_s)


def handshake(sock: socket.socket, host: str, opts: Options, phases: Dict[str, float], deadline: Deadline) -> ssl.SSLSocket:
    bound = handshake_timeout(round_trip_s(sock, phases["connect"] / 1000.0), opts.timeout)
    start = time.monotonic()
    tls = tls_context(opts).wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    try:
        tls.settimeout(min(bound, deadline.left()))
        tls.do_handshake()
    except OSError as exc:  # socket.timeout and the ssl errors are OSErrors
        failure = handshake_failure(exc, host, ms(start))
        failure.kernel = tcp_info(tls)
        tls.close()
        raise failure from None
    phases["tls"] = ms(start)
    return tls


def handshake_failure(exc: OSError, host: str, elapsed_ms: float) -> ProbeFailure:
    if isinstance(exc, socket.timeout):
        return ProbeFailure("tls_handshake_timeout", "TLS handshake with %s did not finish in %.1fs" % (host, elapsed_ms / 1000.0))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ProbeFailure("tls_certificate", "certificate of %s: %s" % (host, exc.verify_message or exc.reason))
    return ProbeFailure("tls_error", "TLS handshake with %s: %s" % (host, getattr(exc, "reason", None) or exc))


class Reader(object):
    """Buffered reads from a socket. Every recv gets only what is left of the attempt's deadline,
    so a peer that drip-feeds bytes cannot hold an attempt past it."""

    def __init__(self, sock: socket.socket, deadline: Deadline):
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""

    def _recv(self, size: int) -> bytes:
        self.sock.settimeout(self.deadline.left())
        return self.sock.recv(size)

    def readline(self, limit: int = MAX_LINE) -> bytes:
        """One line with its newline; what is left before the end of the stream otherwise."""
        while True:
            end = self.buffer.find(b"\n")
            if 0 <= end < limit:
                line, self.buffer = self.buffer[: end + 1], self.buffer[end + 1 :]
                return line
            if len(self.buffer) >= limit:
                raise ProbeFailure("bad_response", "a response line longer than %d bytes" % limit)
            chunk = self._recv(65536)
            if not chunk:
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += chunk

    def read(self, size: int) -> bytes:
        """Up to `size` bytes; b"" at the end of the stream."""
        if not self.buffer:
            return self._recv(min(size, 65536))
        chunk, self.buffer = self.buffer[:size], self.buffer[size:]
        return chunk


@dataclass
class Response:
    status: int = 0
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""  # the first `keep` bytes of the body, not more
    size: int = 0  # every byte of the body, streamed
    truncated: bool = False  # the body was longer than what was kept
    remote_ip: str = ""
    remote_port: int = 0
    tls_version: Optional[str] = None
    phases: Dict[str, float] = field(default_factory=dict)
    kernel: Optional[Dict[str, int]] = None


class Keeper(object):
    """The first `limit` bytes of a body, joined once at the end."""

    def __init__(self, limit: int):
        self.limit = limit
        self.parts: List[bytes] = []
        self.kept = 0
        self.overflow = False

    def __call__(self, chunk: bytes) -> None:
        room = self.limit - self.kept
        if len(chunk) > room:
            self.overflow = True
        if room > 0:
            self.parts.append(chunk[:room])
            self.kept += min(room, len(chunk))


def exchange(
    url: str,
    opts: Options,
    headers: Optional[List[str]] = None,
    sink: Optional[Callable[[bytes], None]] = None,
    keep: int = KEEP_BYTES,
    declared: int = 0,
) -> Response:
    """One HTTP/1.1 GET on a fresh connection, each phase timed, the whole of it bounded by the
    options' timeout. A 200's body streams to `sink` if given, with more time for the `declared`
    size (body_seconds); any other body is kept in `Response.body` up to `keep` bytes. Raises
    ProbeFailure."""
    parts = urlsplit(url)
    resp = Response()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        return _exchange(resp, parts, port, opts, headers or [], sink, keep, declared, Deadline(opts.timeout))
    except ProbeFailure as failure:
        failure.phases = dict(resp.phases)
        failure.remote = (resp.remote_ip, port) if resp.remote_ip else None
        raise


def _exchange(
    resp: Response, parts: Any, port: int, opts: Options, headers: List[str],
    sink: Optional[Callable[[bytes], None]], keep: int, declared: int, deadline: Deadline,
) -> Response:
    phases = resp.phases
    host = parts.hostname or ""
    started = time.monotonic()
    family, ip = resolve(host, port, opts, phases, deadline)
    resp.remote_ip, resp.remote_port = ip, port
    sock: socket.socket = connect(family, ip, port, opts, phases, deadline)
    try:
        if parts.scheme == "https":
            sock = handshake(sock, host, opts, phases, deadline)
            resp.tls_version = sock.version()
        else:
            phases["tls"] = 0.0
        try:
            send_request(sock, parts, host, port, headers, deadline)
            sent = time.monotonic()
            reader = Reader(sock, deadline)
            status_line = reader.readline()
            phases["ttfb"] = ms(sent)
            resp.status = parse_status(status_line, host)
            resp.headers = read_headers(reader)
            keeper = Keeper(keep)
            # Only a 200 carries content for the sink; an auth, error or redirect body is kept aside.
            target: Callable[[bytes], None] = sink if sink is not None and resp.status == 200 else keeper
            if target is sink and declared > 0:
                deadline.extend(body_seconds(declared, resp.headers, opts.timeout))
            resp.size = read_body(reader, resp.status, resp.headers, target)
        except socket.timeout:
            raise ProbeFailure("read_timeout", "no complete response from %s within the %.1fs deadline" % (host, deadline.seconds),
                               tcp_info(sock)) from None
        except ssl.SSLError as exc:
            raise ProbeFailure("tls_error", "reading from %s: %s" % (host, exc), tcp_info(sock)) from None
        except OSError as exc:
            raise ProbeFailure("bad_response", "the connection to %s broke: %s" % (host, exc.strerror or exc), tcp_info(sock)) from None
        resp.body, resp.truncated = b"".join(keeper.parts), keeper.overflow
        resp.kernel = tcp_info(sock)
    finally:
        sock.close()
    phases["total"] = ms(started)
    return resp


def body_seconds(declared: int, headers: Dict[str, str], timeout: float) -> float:
    """The time a blob's body gets beyond --timeout (see BLOB_RATE)."""
    length = headers.get("content-length", "").strip()
    size = min(declared, int(length)) if re.match(r"^[0-9]{1,18}$", length) else declared
    return min(size / float(BLOB_RATE), BLOB_STRETCH * timeout)


def send_request(sock: socket.socket, parts: Any, host: str, port: int, headers: List[str], deadline: Deadline) -> None:
    default_port = 443 if parts.scheme == "https" else 80
    name = "[%s]" % host if ":" in host else host
    host_header = name if port == default_port else "%s:%d" % (name, port)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    lines = ["GET %s HTTP/1.1" % path, "Host: " + host_header, "User-Agent: " + USER_AGENT, "Accept: */*", "Connection: close"]
    lines += headers
    sock.settimeout(deadline.left())
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def parse_status(line: bytes, host: str) -> int:
    if not line:
        raise ProbeFailure("bad_response", "%s closed the connection before any response" % host)
    match = re.match(rb"HTTP/\d(?:\.\d)? (\d{3})", line)
    if not match:
        raise ProbeFailure("bad_response", "%s did not answer HTTP: %r" % (host, line[:60]))
    return int(match.group(1))


def read_headers(reader: Reader) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = reader.readline()
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise ProbeFailure("bad_response", "the response ended inside its headers")
        name, _, value = line.decode("latin-1").partition(":")
        key = name.strip().lower()
        headers[key] = (headers[key] + ", " if key in headers else "") + value.strip()
    raise ProbeFailure("bad_response", "more than %d header lines" % MAX_HEADER_LINES)


def read_body(reader: Reader, status: int, headers: Dict[str, str], sink: Callable[[bytes], None]) -> int:
    """Streams the body to `sink` as it arrives; returns its length."""
    if status < 200 or status in (204, 304):
        return 0
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return read_chunked(reader, sink)
    length = headers.get("content-length")
    if length is None:
        return stream(iter(lambda: reader.read(65536), b""), sink)
    values = {v.strip() for v in length.split(",")}
    if len(values) != 1 or not re.match(r"^\d{1,18}$", next(iter(values))):
        raise ProbeFailure("bad_response", "Content-Length %r is not one number" % length[:40])
    return stream(read_exact(reader, int(values.pop())), sink)


def read_chunked(reader: Reader, sink: Callable[[bytes], None]) -> int:
    total = 0
    while True:
        line = reader.readline(1024)
        if not line:
            raise ProbeFailure("bad_response", "the response ended inside its chunked body")
        size_text = line.split(b";")[0].strip()
        if not re.match(rb"^[0-9a-fA-F]{1,15}$", size_text):
            raise ProbeFailure("bad_response", "bad chunk size %r" % line[:40])
        size = int(size_text, 16)
        if size == 0:
            for _ in range(MAX_HEADER_LINES):  # trailers, up to the blank line
                if reader.readline(1024) in (b"\r\n", b"\n", b""):
                    return total
            raise ProbeFailure("bad_response", "more than %d trailer lines" % MAX_HEADER_LINES)
        total += stream(read_exact(reader, size), sink)
        if reader.readline(1024).strip():
            raise ProbeFailure("bad_response", "a chunk longer than its declared size %d" % size)


def read_exact(reader: Reader, size: int) -> Iterator[bytes]:
    while size > 0:
        chunk = reader.read(min(size, 65536))
        if not chunk:
            raise ProbeFailure("bad_response", "the connection closed %d bytes before the end of the body" % size)
        size -= len(chunk)
        yield chunk


def stream(chunks: Iterable[bytes], sink: Callable[[bytes], None]) -> int:
    total = 0
    for chunk in chunks:
        sink(chunk)
        total += len(chunk)
    return total


def ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000.0, 2)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------- records


def record(kind: str, target: str, attempt: int, **fields: Any) -> Dict[str, Any]:
    """One attempt, always the same shape: the failure reason is data, not a log line."""
    rec = {
        "kind": kind,
        "target": target,
        "attempt": attempt,
        "timestamp": utc_now(),
        "ok": False,
        "error_class": None,
        "error": None,
        "remote_ip": None,
        "remote_port": None,
        "phases_ms": {},
    }
    rec.update(fields)
    return rec


def failed(rec: Dict[str, Any], failure: ProbeFailure) -> Dict[str, Any]:
    rec.update(ok=False, error_class=failure.cls, error=str(failure))
    if failure.phases and not rec.get("phases_ms"):
        rec["phases_ms"] = failure.phases
    if failure.remote and not rec.get("remote_ip"):
        rec["remote_ip"], rec["remote_port"] = failure.remote
    if failure.kernel:
        rec["kernel"] = failure.kernel
    return rec


# ---------------------------------------------------------------- http


def status_ranges(text: str) -> List[Tuple[int, int]]:
    """'200-399,401' -> [(200, 399), (401, 401)]. A registry's 401 on /v2/ means reachable, so it
    is in the default."""
    ranges = []
    for part in text.split(","):
        match = re.match(r"^(\d{3})(?:-(\d{3}))?$", part.strip())
        low, high = match.groups() if match else ("", "")
        if not match or int(high or low) < int(low):
            raise ValueError("%r is not a status or a LOW-HIGH range of statuses" % part.strip())
        ranges.append((int(low), int(high or low)))
    return ranges


def http_attempt(url: str, attempt: int, opts: Options, headers: List[str], expect: List[Tuple[int, int]]) -> Dict[str, Any]:
    rec = record("http", redact_url(url), attempt, big_hello=opts.big_hello)
    try:
        resp = exchange(url, opts, headers, keep=0)
    except ProbeFailure as failure:
        return failed(rec, failure)
    rec.update(
        remote_ip=resp.remote_ip,
        remote_port=resp.remote_port,
        phases_ms=resp.phases,
        status=resp.status,
        bytes=resp.size,
        tls_version=resp.tls_version,
    )
    if any(low <= resp.status <= high for low, high in expect):
        rec["ok"] = True
        return rec
    return failed(rec, ProbeFailure("http_status", "HTTP %d from %s is not an expected status" % (resp.status, urlsplit(url).hostname)))


def run_http(args: argparse.Namespace, sink: "Collector") -> None:
    """Every URL, --repeat times. Without --interval all attempts overlap up to --concurrency;
    with it, round after round."""
    opts = options_from(args)
    jobs = [(url, n) for n in range(1, args.repeat + 1) for url in args.urls]
    rounds = [[job for job in jobs if job[1] == n] for n in range(1, args.repeat + 1)] if args.interval > 0 else [jobs]
    sink.total = len(jobs)
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        for index, batch in enumerate(rounds):
            if index:
                time.sleep(args.interval)
            for rec in pool.map(lambda job: http_attempt(job[0], job[1], opts, args.header, args.expect), batch):
                sink.add(rec)


# ---------------------------------------------------------------- pull


MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
# OCI's digest grammar: a registry's digest goes into a request's path, so nothing else may
DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\Z")


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    reference: str

    def __str__(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return "%s/%s%s%s" % (self.registry, self.repository, sep, self.reference)


def parse_image(text: str) -> ImageRef:
    """Docker's reference rules: a first component with '.' or ':' (or localhost) is a registry;
    docker.io names without a namespace live under library/."""
    name, digest = (text.split("@", 1) + [""])[:2]
    registry, rest = "docker.io", name
    first, _, remainder = name.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, remainder
    tag = "latest"
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
    if registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        registry = "docker.io"
        if "/" not in rest:
            rest = "library/" + rest
    if not re.match(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$", rest):
        raise ValueError("invalid repository name in %r" % text)
    if digest and not re.match(r"^sha256:[0-9a-f]{64}$", digest):
        raise ValueError("invalid digest in %r" % text)
    if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", tag):
        raise ValueError("invalid tag in %r" % text)
    return ImageRef(registry, rest, digest or tag)


def registry_endpoint(registry: str, plain_http: List[str]) -> str:
    host = "registry-1.docker.io" if registry == "docker.io" else registry
    return ("http://" if registry in plain_http else "https://") + host


class Puller(object):
    """A registry-API pull on one endpoint: token flow, index -> platform manifest, verified blobs."""

    def __init__(self, endpoint: str, ref: ImageRef, opts: Options, platform_: str):
        self.endpoint = endpoint.rstrip("/")
        self.ref = ref
        self.opts = opts
        self.platform = platform_
        self.token: Optional[str] = None
        self.steps: List[Dict[str, Any]] = []
        self.hosts: List[str] = []
        self.bytes = 0

    def pull(self) -> str:
        manifest, media_type, digest = self.manifest(self.ref.reference)
        if media_type in INDEX_TYPES or "manifests" in manifest:
            child = self.pick_platform(manifest)
            manifest, media_type, digest = self.manifest(child)
        try:
            blobs = [(str(b["digest"]), int(b.get("size", 0))) for b in [manifest["config"]] + list(manifest.get("layers", []))]
        except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: a size of 1e999
            blobs = []
        if not blobs or not all(DIGEST.match(d) for d, _ in blobs):
            raise ProbeFailure("registry_error", "manifest %s lists no usable config and layers" % digest)
        for index, (blob_digest, size) in enumerate(blobs):
            self.blob(blob_digest, size, "layer" if index else "config")
        return digest

    def manifest(self, reference: str) -> Tuple[Dict[str, Any], str, str]:
        body, headers = self.get("/v2/%s/manifests/%s" % (self.ref.repository, reference), "manifest", ["Accept: " + MANIFEST_TYPES])
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise ProbeFailure("digest_mismatch", "manifest %s arrived with digest %s" % (reference, digest))
        try:
            document = json.loads(body.decode("utf-8"))
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ProbeFailure("registry_error", "manifest %s is not a JSON object" % reference)
        return document, str(headers.get("content-type", document.get("mediaType", ""))), digest

    def pick_platform(self, index: Dict[str, Any]) -> str:
        wanted = self.platform.split("/")
        entries = index.get("manifests")
        if not isinstance(entries, list):
            raise ProbeFailure("registry_error", "the index has no list of manifests")
        # (platform, entry); an entry without a platform object (an attestation, say) offers none
        plats: List[Tuple[Dict[str, Any], Dict[str, Any]]] = [
            (m["platform"] if isinstance(m.get("platform"), dict) else {}, m) for m in entries if isinstance(m, dict)]
        for plat, entry in plats:
            offered = [plat.get("os"), plat.get("architecture"), plat.get("variant")][: len(wanted)]
            if offered == wanted and "digest" in entry:
                if not isinstance(entry["digest"], str) or not DIGEST.match(entry["digest"]):
                    raise ProbeFailure("registry_error", "the index's %s entry has no valid digest" % self.platform)
                return entry["digest"]
        found = ", ".join("%s/%s" % (plat.get("os"), plat.get("architecture")) for plat, _ in plats)
        raise ProbeFailure("registry_error", "no %s image in the index (has: %s)" % (self.platform, found))

    def blob(self, digest: str, size: int, what: str) -> None:
        hasher = hashlib.sha256()
        self.get("/v2/%s/blobs/%s" % (self.ref.repository, digest), what, [], sink=hasher.update, declared=size)
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            raise ProbeFailure("digest_mismatch", "%s blob %s arrived with digest %s" % (what, digest, actual))

    def get(self, path: str, step: str, headers: List[str], sink: Optional[Callable[[bytes], None]] = None,
            declared: int = 0, accept: Tuple[int, ...] = (200,)) -> Tuple[bytes, Dict[str, str]]:
        """GET with the bearer-token flow and redirects (blob hosts); every hop is recorded."""
        url = self.endpoint + path
        start = time.monotonic()
        for _hop in range(6):
            auth = ["Authorization: Bearer " + self.token] if self.token and same_host(url, self.endpoint) else []
            resp = exchange(url, self.opts, headers + auth, sink=sink, declared=declared)
            self.note_host(url)
            if resp.status == 401 and not auth and "www-authenticate" in resp.headers:
                self.fetch_token(resp.headers["www-authenticate"])
                continue
            if resp.status in (301, 302, 303, 307, 308) and "location" in resp.headers:
                url = urljoin(url, resp.headers["location"])
                if url_problem(url):
                    raise ProbeFailure("registry_error", "%s redirected to an unusable URL: %s" % (step, url_problem(url)))
                continue
            if resp.status not in accept:
                raise ProbeFailure("http_status", "HTTP %d for %s at %s" % (resp.status, step, host_of(url)))
            if resp.truncated:
                raise ProbeFailure("registry_error", "the %s at %s is larger than %d bytes" % (step, host_of(url), KEEP_BYTES))
            self.bytes += resp.size
            self.steps.append({"step": step, "ms": ms(start), "bytes": resp.size, "host": host_of(url)})
            return resp.body, resp.headers
        raise ProbeFailure("registry_error", "too many redirects or auth rounds for %s" % step)

    def fetch_token(self, challenge: str) -> None:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() != "bearer":
            raise ProbeFailure("registry_error", "registry wants %s auth; only anonymous bearer tokens are supported" % scheme)
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        realm = fields.get("realm", "")
        if url_problem(realm):
            raise ProbeFailure("registry_error", "bearer challenge without a usable realm: %s" % url_problem(realm))
        query = urlencode({"service": fields.get("service", ""), "scope": fields.get("scope") or "repository:%s:pull" % self.ref.repository})
        start = time.monotonic()
        resp = exchange(realm + ("&" if "?" in realm else "?") + query, self.opts)
        self.note_host(realm)
        if resp.status != 200:
            raise ProbeFailure("http_status", "HTTP %d from the token service %s" % (resp.status, host_of(realm)))
        try:
            document = json.loads(resp.body.decode("utf-8"))
            token = document.get("token") or document["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise ProbeFailure("registry_error", "token service answered without a token") from None
        # it is sent in a header: a JWT or base64 is visible ASCII; anything else would not encode,
        # or (a line break) would add headers of the registry's choosing
        if not isinstance(token, str) or not re.match(r"^[\x21-\x7e]+\Z", token):
            raise ProbeFailure("registry_error", "the token service's token is not printable ASCII")
        self.token = token
        self.steps.append({"step": "token", "ms": ms(start), "bytes": resp.size, "host": host_of(realm)})

    def note_host(self, url: str) -> None:
        host = host_of(url)
        if host not in self.hosts:
            self.hosts.append(host)


def url_problem(url: str) -> Optional[str]:
    """Why `url` is not an http:// or https:// URL with a host and a valid port, or None:
    nothing else is requested, from the command line or from a registry's answers."""
    if re.search(r"[^\x21-\x7e]", url):  # it goes on the request line as it is
        return "a space, control or non-ASCII character: percent-encode it"
    if "://" not in url:
        return "no scheme, write https://" + redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "only http:// and https:// are probed"
    if not parts.hostname or port == 0:
        return "no host, or port 0"
    return None


def same_host(a: str, b: str) -> bool:
    return urlsplit(a).netloc == urlsplit(b).netloc


def default_platform() -> str:
    machine = platform.machine().lower()
    return "linux/" + {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def pull_attempt(image: str, attempt: int, args: argparse.Namespace, opts: Options) -> Dict[str, Any]:
    rec = record("pull", image, attempt)
    ref = parse_image(image)
    upstream = registry_endpoint(ref.registry, args.plain_http)
    endpoints = ([("mirror", args.mirror)] if args.mirror else []) + ([] if args.no_fallback and args.mirror else [("upstream", upstream)])
    start = time.monotonic()
    tried: List[Dict[str, Any]] = []
    if getattr(args, "manifest_only", False):
        rec["mode"] = "manifest"
    for role, endpoint in endpoints:
        puller = (ManifestCheck if getattr(args, "manifest_only", False) else Puller)(endpoint, ref, opts, args.platform)
        try:
            digest = puller.pull()
        except ProbeFailure as failure:
            last = failure
        # The last line of defence: an answer the checks above did not foresee is the registry's
        # fault, a class and a note, never a traceback (UnicodeError is a ValueError).
        except (TypeError, AttributeError, ValueError, OverflowError) as exc:
            note = redact_text(str(exc), filter(None, [puller.token]))[:200]
            last = ProbeFailure("registry_error", "the registry's answer broke the pull (%s: %s)" % (type(exc).__name__, note))
        else:
            rec.update(ok=True, digest=digest, served_by=role, endpoint=redact_url(endpoint), hosts=puller.hosts, steps=puller.steps, bytes=puller.bytes)
            rec["phases_ms"] = {"total": ms(start)}
            rec["fallbacks"] = tried
            return rec
        tried.append({"endpoint": redact_url(endpoint), "role": role, "error_class": last.cls, "error": str(last), "steps": puller.steps})
    rec["phases_ms"] = {"total": ms(start)}
    rec["fallbacks"] = tried
    return failed(rec, last)


CRICTL_PATTERNS = [
    ("tls_handshake_timeout", r"TLS handshake timeout"),
    ("dns_error", r"no such host|server misbehaving"),
    ("connect_refused", r"connection refused"),
    ("connect_timeout", r"dial tcp .*(i/o timeout|connect: connection timed out)"),
    ("read_timeout", r"i/o timeout|context deadline exceeded|Client.Timeout"),
    ("tls_certificate", r"x509:"),
    ("tls_error", r"tls:"),
    ("http_status", r"unexpected status|not found|401 Unauthorized|403 Forbidden|429 Too Many"),
]


def classify_runtime_error(text: str) -> str:
    for cls, pattern in CRICTL_PATTERNS:
        if re.search(pattern, text):
            return cls
    return "runtime_error"


def runtime_attempt(image: str, attempt: int, args: argparse.Namespace) -> Dict[str, Any]:
    rec = record("pull", image, attempt, runtime="crictl")
    command = ["crictl", "pull", image] if shutil.which("crictl") else ["k3s", "crictl", "pull", image]
    start = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout * 6)
    except subprocess.TimeoutExpired:
        rec["phases_ms"] = {"total": ms(start)}
        return failed(rec, ProbeFailure("read_timeout", "%s did not finish in %.0fs" % (" ".join(command), args.timeout * 6)))
    except OSError as exc:
        return failed(rec, ProbeFailure("runtime_error", "cannot run %s: %s" % (command[0], exc)))
    rec["phases_ms"] = {"total": ms(start)}
    if done.returncode == 0:
        rec.update(ok=True, served_by="runtime", output=done.stdout.strip()[-300:])
        return rec
    text = (done.stderr or done.stdout).strip()
    return failed(rec, ProbeFailure(classify_runtime_error(text), text[-500:]))


def run_pull(args: argparse.Namespace, sink: "Collector") -> None:
    opts = options_from(args)
    sink.total = args.repeat * len(args.images)
    for n in range(1, args.repeat + 1):
        for image in args.images:
            sink.add(runtime_attempt(image, n, args) if args.runtime == "crictl" else pull_attempt(image, n, args, opts))


# ---------------------------------------------------------------- mss-sweep

DEFAULT_TRIES = 3  # handshakes (small and large hello each) at the default MSS
REPRODUCED = 2  # stalled default tries that make a black hole, given a working MSS below
# Connections of a round start this far apart: a burst of SYNs overflows a small listen backlog
# (Python's socketserver keeps 5) into connect timeouts that say nothing about size.
LAUNCH_GAP_S = 0.003


def route_mtu(family: int, ip: str, port: int, source: Optional[str]) -> Optional[int]:
    """The MTU the kernel's route to `ip` has (no packet is sent: a connected UDP socket)."""
    try:
        probe = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if source:
                probe.bind((source, 0))
            probe.connect((ip, port))
            if family == socket.AF_INET6:
                return int(probe.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU))
            return int(probe.getsockopt(socket.IPPROTO_IP, IP_MTU))
        finally:
            probe.close()
    except OSError:
        return None


def handshake_ok(host: str, port: int, opts: Options) -> Tuple[bool, Optional[ProbeFailure]]:
    """One TCP connect + TLS handshake with the options' MSS and hello size; (ok, the failure)."""
    phases: Dict[str, float] = {}
    deadline = Deadline(opts.timeout)
    try:
        family, ip = resolve(host, port, opts, phases, deadline)
        sock = connect(family, ip, port, opts, phases, deadline)
        try:
            handshake(sock, host, opts, phases, deadline).close()
        finally:
            sock.close()
        return True, None
    except ProbeFailure as failure:
        return False, failure


def spread(low: int, high: int, width: int) -> List[int]:
    """Up to `width` MSS values strictly between `low` (works) and `high` (fails), evenly spaced,
    the largest at high - 1: one round of the search."""
    count = high - low - 1
    if count <= width:
        return list(range(low + 1, high))
    step = count / float(width)
    return sorted({low + int(round(step * (i + 1))) for i in range(width)})


def stalled(trial: Dict[str, Any]) -> bool:
    """The size signature: TCP connected, then the handshake's large segments never arrived.
    A refused or unanswered SYN, or a reset, says nothing about size."""
    return bool(trial["error_class"] == "tls_handshake_timeout")


def bounds(trials: List[Dict[str, Any]], big: bool, high: int) -> Tuple[Optional[int], int]:
    """(largest MSS whose handshake got through, smallest MSS above it that stalled). A pass is
    proof; a stall below a pass was noise."""
    sized = [t for t in trials if t["mss"] is not None and t["big_hello"] == big]
    passed = [t["mss"] for t in sized if t["through"]]
    low = max(passed) if passed else None
    failing = [t["mss"] for t in sized if stalled(t) and (low is None or t["mss"] > low)]
    return low, min(failing + [high + 1])


class Sweep(object):
    """The largest MSS at which large first flights get through both ways. Each round tries
    several MSS values at once; the default MSS is tried DEFAULT_TRIES times beside the first."""

    def __init__(self, host: str, port: int, ip: str, args: argparse.Namespace, log: Callable[[str], None]):
        self.host, self.port, self.ip, self.args, self.log = host, port, ip, args, log
        # every trial reaches the same address
        self.opts = Options(args.timeout, {(host, port): ip}, args.ca_file, source=args.source)
        self.deadline = time.monotonic() + args.budget
        self.trials: List[Dict[str, Any]] = []
        self.lock = threading.Lock()

    def trial(self, mss: Optional[int], big: bool) -> Dict[str, Any]:
        start = time.monotonic()
        ok, failure = handshake_ok(self.host, self.port, replace(self.opts, mss=mss, big_hello=big))
        cls = failure.cls if failure else None
        # A certificate is checked only once the server's whole first flight arrived: its
        # packets got through, so for sizing the handshake passes.
        trial = {"mss": mss, "big_hello": big, "ok": ok, "error_class": cls, "error": str(failure) if failure else None,
                 "through": ok or cls == "tls_certificate", "ms": ms(start), "timestamp": utc_now()}
        with self.lock:
            self.trials.append(trial)
        self.log("mss %s %s hello: %s" % (mss or "default", "large" if big else "small", "ok" if ok else cls))
        return trial

    def round(self, specs: List[Tuple[Optional[int], bool]]) -> List[Dict[str, Any]]:
        """Handshakes with these (MSS, large hello) at once; their trials, in order."""
        with ThreadPoolExecutor(max_workers=len(specs)) as pool:
            futures = []
            for spec in specs:
                futures.append(pool.submit(self.trial, *spec))
                time.sleep(LAUNCH_GAP_S)
            return [future.result() for future in futures]

    def run(self) -> Dict[str, Any]:
        family = socket.AF_INET6 if ":" in self.ip else socket.AF_INET
        overhead = 60 if family == socket.AF_INET6 else 40
        mtu = route_mtu(family, self.ip, self.port, self.args.source) or 1500
        high = min(self.args.max_mss or MAX_MSS, mtu - overhead, MAX_MSS)
        result: Dict[str, Any] = {"target": "%s:%d" % (self.host, self.port), "remote_ip": self.ip, "source": self.args.source,
                                  "route_mtu": mtu, "ip_overhead": overhead}
        defaults: List[Tuple[Optional[int], bool]] = [(None, big) for big in (False, True) for _ in range(DEFAULT_TRIES)]
        floor: List[Tuple[Optional[int], bool]] = [(MIN_MSS, False), (MIN_MSS, True)]
        first = self.round(defaults + floor + [(m, True) for m in spread(MIN_MSS, high + 1, self.args.parallel)])
        default_trials, floor_trials = first[: len(defaults)], first[len(defaults) : len(defaults) + 2]
        # Size with the large hello, which fills a segment each way; with the small one only if
        # the server refuses large hellos even in small segments.
        big = floor_trials[1]["through"] or not floor_trials[0]["through"]
        best, above = bounds(self.trials, big, high)
        while best is not None and above - best > 1:
            if time.monotonic() > self.deadline:
                result["incomplete"] = "time budget of %.0fs ran out; the working MSS is at least %d" % (self.args.budget, best)
                break
            self.round([(m, big) for m in spread(best, above, self.args.parallel)])
            if bounds(self.trials, big, high) == (best, above):
                result["incomplete"] = "a round settled nothing (no pass, no stall); the working MSS is at least %d" % best
                break
            best, above = bounds(self.trials, big, high)
        confirmed = best is not None and all(t["through"] for t in self.round([(best, big)] * self.args.repeat))
        # a try is one small and one large hello at the default MSS
        tries = [(default_trials[i], default_trials[DEFAULT_TRIES + i]) for i in range(DEFAULT_TRIES)]
        stalls = sum(stalled(small) or stalled(large) for small, large in tries)
        failures = sum(not (small["through"] and large["through"]) for small, large in tries)
        result.update(default_mss_works=failures < REPRODUCED, default_tries=DEFAULT_TRIES, default_stalls=stalls)
        result.update(sweep_verdict(stalls, best, confirmed, high, overhead, floor_trials[0]["error_class"] if best is None else None))
        small_stalls = sum(stalled(small) for small, _ in tries)
        result["direction"] = ("both" if small_stalls >= REPRODUCED else "toward-server") if result["black_hole"] else None
        if not big:
            result["note"] = ((result["note"] or "") + " Sized with the small hello: the server refuses a large one even at MSS %d." % MIN_MSS).strip()
        certificate = [t["error"] for t in self.trials if t["error_class"] == "tls_certificate"]
        result["certificate_error"] = certificate[0] if certificate else None
        result["trials"] = self.trials
        return result


UNREACHABLE = {
    "connect_refused": "TCP is refused even at MSS %d: the service is down or filtered (not an MTU problem)",
    "connect_timeout": "TCP is not answered even at MSS %d: the host or the path to it is down (not an MTU problem)",
    "connect_error": "TCP cannot reach the host even at MSS %d: the network or host is unreachable (not an MTU problem)",
    "tls_handshake_timeout": "TCP connects but TLS never answers, even at MSS %d with a small hello: the server stalls (not an MTU problem)",
}


def sweep_verdict(default_stalls: int, best: Optional[int], confirmed: bool, high: int, overhead: int,
                  unreachable_class: Optional[str] = None) -> Dict[str, Any]:
    """The sweep's conclusion. A black hole needs handshakes at the default MSS to stall in
    REPRODUCED of its tries while a smaller MSS passes every one of its own; anything less is
    noise, called clean with a note. `best` is None when even MIN_MSS failed (`unreachable_class`
    says how)."""
    out: Dict[str, Any] = {"working_mss": best, "path_mtu": best + overhead if best else None, "black_hole": False,
                           "recommended_clamp": None, "note": None, "unreachable_class": None}
    noise = "%d of %d default-MSS tries stalled" % (default_stalls, DEFAULT_TRIES)
    if best is None:
        cause = UNREACHABLE.get(unreachable_class or "", "handshakes fail even at MSS %%d (%s): not an MTU problem" % unreachable_class)
        out.update(verdict="unreachable", unreachable_class=unreachable_class, explanation=cause % MIN_MSS)
    elif default_stalls >= REPRODUCED and best < high and confirmed:
        out.update(black_hole=True, verdict="black-hole", recommended_clamp=best,
                   explanation="%s but every one completes at MSS %d: a PMTU black hole; clamp TCP MSS to %d (path MTU %d)"
                   % (noise, best, best, best + overhead))
    elif default_stalls >= REPRODUCED:
        why = "MSS %d, the full size, passes" % best if best >= high else "handshakes at MSS %d fail too" % best
        out.update(verdict="clean", explanation="no size limit explains the failures: %s" % why,
                   note="%s, but %s: loss or a flaky server, not a PMTU black hole" % (noise, why))
    else:
        if best < high:
            out.update(verdict="clean-default", explanation="the default MSS works although larger probes above %d failed" % best)
        else:
            out.update(verdict="clean", explanation="full-size segments get through in both directions; no clamp needed")
        if default_stalls:
            out["note"] = "%s and did not reproduce: noise, not a size limit" % noise
    return out


class Tracepath(object):
    """tracepath beside the sweep: started with it, stopped when the sweep ends or after its own
    bound. It learns the path MTU from ICMP, so across a black hole its first hops and a pmtu
    that never came down are all it has to say."""

    def __init__(self, ip: str, limit: float, source: Optional[str]):
        self.limit, self.source = limit, source
        self.started = time.monotonic()
        tool = shutil.which("tracepath")
        self.proc: Optional[subprocess.Popen[str]] = None
        if tool:
            # line-buffered (stdbuf), so a stopped run still shows its hops
            argv = (["stdbuf", "-oL"] if shutil.which("stdbuf") else []) + [tool, "-n", "-m", "8", ip]
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.timer = threading.Timer(limit, self._stop)
        self.timer.daemon = True
        self.timer.start()

    def _stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def output(self) -> Optional[str]:
        if self.proc is None:
            return None
        self.timer.cancel()
        stopped = self.proc.poll() is None
        self._stop()
        text = self.proc.communicate()[0].strip()
        elapsed = time.monotonic() - self.started
        if self.proc.returncode < 0:
            at_bound = not stopped or elapsed >= self.limit
            text += "\n(tracepath stopped after %.1fs, %s: partial)" % (min(elapsed, self.limit), "at its bound" if at_bound else "when the sweep ended")
        if self.source:
            text += "\n(tracepath cannot bind --source %s: it took this host's own route)" % self.source
        return text


def run_sweep(args: argparse.Namespace, sink: "Collector") -> None:
    host, port = args.target
    try:
        ip = resolve(host, port, Options(args.timeout, args.resolve), {}, Deadline(args.timeout))[1]
    except ProbeFailure as failure:
        sink.add(failed(record("mss-sweep", "%s:%d" % (host, port), 1), failure))
        return
    tracepath = None if args.no_tracepath else Tracepath(ip, args.tracepath_timeout, args.source)
    try:
        result = Sweep(host, port, ip, args, sink.progress).run()
    finally:
        evidence = tracepath.output() if tracepath else None  # never left running, even on Ctrl-C
    if tracepath:
        result["tracepath"] = evidence
    sink.sweep = result
    sink.add(sweep_record(result))


def sweep_record(result: Dict[str, Any]) -> Dict[str, Any]:
    """The sweep as one attempt record: ok when the sweep finds no size limit and the certificate
    is trusted; otherwise classified by the black hole, the unreachable cause or the certificate."""
    rec = record("mss-sweep", result["target"], 1, remote_ip=result["remote_ip"], remote_port=int(result["target"].rsplit(":", 1)[1]))
    if result["black_hole"]:
        defaults = [t["error_class"] for t in result["trials"] if t["mss"] is None and not t["through"]]
        return failed(rec, ProbeFailure(max(set(defaults), key=defaults.count), result["explanation"]))
    if result["unreachable_class"]:
        return failed(rec, ProbeFailure(result["unreachable_class"], result["explanation"]))
    if result["certificate_error"]:
        return failed(rec, ProbeFailure("tls_certificate", result["certificate_error"]))
    rec["ok"] = True
    return rec


# ---------------------------------------------------------------- facts


def read(path: str) -> Optional[str]:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def nameservers(path: str) -> List[str]:
    text = read(path) or ""
    return [line.split()[1] for line in text.splitlines() if line.startswith("nameserver") and len(line.split()) > 1]


def default_routes() -> List[Dict[str, str]]:
    routes = []
    for line in (read("/proc/net/route") or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            gateway = socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
            routes.append({"family": "inet", "dev": fields[0], "via": gateway})
    for line in (read("/proc/net/ipv6_route") or "").splitlines():
        fields = line.split()
        if len(fields) == 10 and fields[0] == "0" * 32 and fields[1] == "00" and fields[9] != "lo":
            via = ":".join(fields[4][i : i + 4] for i in range(0, 32, 4))
            routes.append({"family": "inet6", "dev": fields[9], "via": str(via)})
    return routes


def interfaces() -> List[Dict[str, Any]]:
    out = []
    base = "/sys/class/net"
    names = sorted(os.listdir(base)) if os.path.isdir(base) else []
    addresses = interface_addresses()
    for name in names:
        mtu = read(os.path.join(base, name, "mtu"))
        out.append({"name": name, "mtu": int(mtu) if mtu and mtu.isdigit() else None,
                    "state": read(os.path.join(base, name, "operstate")), "addresses": addresses.get(name, [])})
    return out


def interface_addresses() -> Dict[str, List[str]]:
    if not shutil.which("ip"):
        return {}
    try:
        text = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found: Dict[str, List[str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[2] in ("inet", "inet6"):
            found.setdefault(fields[1], []).append(fields[3])
    return found


def facts() -> Dict[str, Any]:
    resolved = "/run/systemd/resolve/resolv.conf"
    return {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "interfaces": interfaces(),
        "default_routes": default_routes(),
        "resolvers": nameservers("/etc/resolv.conf"),
        "resolved_upstreams": nameservers(resolved) if os.path.exists(resolved) else None,
        "tcp_mtu_probing": _int(read("/proc/sys/net/ipv4/tcp_mtu_probing")),
        "ip_no_pmtu_disc": _int(read("/proc/sys/net/ipv4/ip_no_pmtu_disc")),
    }


def _int(text: Optional[str]) -> Optional[int]:
    return int(text) if text and text.lstrip("-").isdigit() else None


# ---------------------------------------------------------------- output


class Collector(object):
    """Records as they arrive, progress on stderr for long runs, what was measured on Ctrl-C."""

    def __init__(self, quiet: bool):
        self.records: List[Dict[str, Any]] = []
        self.total = 0
        self.started = time.monotonic()
        self.last_progress = 0.0
        self.quiet = quiet
        self.sweep: Optional[Dict[str, Any]] = None
        self.lock = threading.Lock()

    def add(self, rec: Dict[str, Any]) -> None:
        with self.lock:
            self.records.append(rec)
            done = len(self.records)
        status = "ok" if rec["ok"] else rec["error_class"]
        self.progress("[%d/%d] %s #%d: %s" % (done, self.total or done, rec["target"], rec["attempt"], status))

    def progress(self, line: str) -> None:
        now = time.monotonic()
        if self.quiet or now - self.started < 3.0 or now - self.last_progress < 1.0:
            return
        self.last_progress = now
        sys.stderr.write("netstab-probe: %s\n" % line)
        sys.stderr.flush()


def percentile(values: List[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


def summarize(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    targets: Dict[str, List[Dict[str, Any]]] = {}
    for rec in records:
        targets.setdefault(rec["target"], []).append(rec)
    out = []
    for target, recs in targets.items():
        errors: Dict[str, int] = {}
        for rec in recs:
            if not rec["ok"]:
                errors[rec["error_class"]] = errors.get(rec["error_class"], 0) + 1
        phases = {}
        for phase in PHASES:
            values = [r["phases_ms"][phase] for r in recs if r["ok"] and phase in r.get("phases_ms", {})]
            if values:
                phases[phase] = {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "max": max(values)}
        ok = sum(1 for r in recs if r["ok"])
        out.append({"target": target, "attempts": len(recs), "ok": ok, "success_ratio": round(ok / len(recs), 3), "errors": errors, "phases_ms": phases})
    return out


def document(command: str, argv: List[str], secrets: List[str], collector: Collector, interrupted: bool) -> Dict[str, Any]:
    doc: Dict[str, Any] = {
        "schema": SCHEMA,
        "agent_version": AGENT_VERSION,
        "command": command,
        "argv": redact_argv(argv, secrets),
        "started": collector.records[0]["timestamp"] if collector.records else utc_now(),
        "finished": utc_now(),
        "interrupted": interrupted,
        "host": facts(),
        "records": collector.records,
        "summary": summarize(collector.records),
    }
    if collector.sweep is not None:
        doc["mss_sweep"] = collector.sweep
    return doc


def table(doc: Dict[str, Any]) -> str:
    lines = ["host %s  (%s)" % (doc["host"]["hostname"], ", ".join("%s mtu %s" % (i["name"], i["mtu"]) for i in doc["host"]["interfaces"] if i["name"] != "lo"))]
    for item in doc["summary"]:
        errors = ", ".join("%s=%d" % kv for kv in sorted(item["errors"].items())) or "-"
        lines.append("%-48s %3d/%-3d ok  errors: %s" % (item["target"][:48], item["ok"], item["attempts"], errors))
        for phase, stats in item["phases_ms"].items():
            lines.append("    %-8s p50 %8.1f ms   p95 %8.1f ms   max %8.1f ms" % (phase, stats["p50"], stats["p95"], stats["max"]))
    sweep = doc.get("mss_sweep")
    if sweep:
        lines.append("mss-sweep %s: %s" % (sweep["target"], sweep["verdict"]))
        lines.append("    default MSS works: %s   working MSS: %s   path MTU: %s   recommended clamp: %s"
                     % (sweep["default_mss_works"], sweep["working_mss"], sweep["path_mtu"], sweep["recommended_clamp"]))
        for key in ("explanation", "note", "certificate_error", "incomplete"):
            if sweep.get(key):
                lines.append("    %s%s" % ("" if key == "explanation" else key.replace("_", " ") + ": ", sweep[key]))
        if sweep.get("tracepath"):
            lines += ["    tracepath: " + line for line in sweep["tracepath"].splitlines()]
    if doc["interrupted"]:
        lines.append("(interrupted: partial results)")
    return "\n".join(lines)


# ---------------------------------------------------------------- command line


class Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr and exit 2, with any secret in them redacted."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write("%s: error: %s\n" % (self.prog, redact_text(message)))
        sys.exit(2)


MAX_SECONDS = 86400  # a day: more is a typo, and from ~1e9 s socket and thread waits overflow


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError("%r is not a positive number of seconds" % text)
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError("%r is more than %d seconds (a day)" % (text, MAX_SECONDS))
    return value


def pause(text: str) -> float:
    """Seconds between rounds: zero or more."""
    try:
        return 0.0 if float(text) == 0 else seconds(text)
    except ValueError:
        return seconds(text)


def count(text: str) -> int:
    if not re.match(r"^\d{1,6}$", text.strip()) or int(text) < 1:
        raise argparse.ArgumentTypeError("%r is not a positive whole number" % text)
    return int(text)


MAX_THREADS = 256  # each attempt at once is a thread: thousands would exhaust a small node first


def threads(text: str) -> int:
    value = count(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError("%r is more than %d at once" % (text, MAX_THREADS))
    return value


def web_url(text: str) -> str:
    problem = url_problem(text)
    if problem:
        raise argparse.ArgumentTypeError("%s: %s" % (redact_url(text), problem))
    return text


def header(text: str) -> str:
    """NAME: VALUE, sent as Latin-1. The message never shows the value: it may be a secret."""
    name, sep, value = text.partition(":")
    if not sep or not re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z", name) or re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):
        raise argparse.ArgumentTypeError("a header is NAME: VALUE on one line")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError("the value of header %s is not Latin-1 text" % name) from None
    return text


def host_port(text: str) -> Tuple[str, int]:
    match = re.match(r"^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]+))(?::(\d{1,5}))?$", text)
    port = int(match.group(3) or 443) if match else 0
    if not match or not 0 < port < 65536:
        raise argparse.ArgumentTypeError("%r is not HOST[:PORT] (an IPv6 address in brackets)" % text)
    return match.group(1) or match.group(2), port


def resolve_entry(text: str) -> Tuple[Tuple[str, int], str]:
    """HOST:PORT:ADDR, as curl's --resolve (ADDR may be an IPv6 address, bracketed or not)."""
    host, _, rest = text.partition(":")
    port, _, address = rest.partition(":")
    try:
        ipaddress.ip_address(address.strip("[]"))
        valid = bool(host) and 0 < int(port) < 65536
    except ValueError:
        valid = False
    if not valid:
        raise argparse.ArgumentTypeError("%r is not HOST:PORT:ADDR with ADDR an IP address" % text)
    return (host, int(port)), address.strip("[]")


def image(text: str) -> str:
    try:
        problem = url_problem(registry_endpoint(parse_image(text).registry, []))
    except ValueError as exc:
        problem = str(exc)
    if problem:
        raise argparse.ArgumentTypeError("%s: %s" % (text, problem))
    return text


def platform_spec(text: str) -> str:
    if not re.match(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$", text):
        raise argparse.ArgumentTypeError("%r is not OS/ARCH[/VARIANT], e.g. linux/amd64" % text)
    return text


def expect_spec(text: str) -> List[Tuple[int, int]]:
    try:
        return status_ranges(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def ca_bundle(path: str) -> str:
    """A readable PEM bundle, checked before any connection."""
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise argparse.ArgumentTypeError("%s: not a readable PEM CA bundle (%s)" % (path, getattr(exc, "strerror", None) or exc)) from None
    return path


def source_address(text: str) -> str:
    """An address of this host that outgoing connections can be bound to."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(text).version == 6 else socket.AF_INET
        probe = socket.socket(family, socket.SOCK_STREAM)
        try:
            probe.bind((text, 0))
        finally:
            probe.close()
    except (ValueError, OSError):
        raise argparse.ArgumentTypeError("%r is not an IP address of this host" % text) from None
    return text


def mss_value(text: str) -> int:
    value = count(text)
    if value <= MIN_MSS:
        raise argparse.ArgumentTypeError("%r: the highest MSS to try must be above %d" % (text, MIN_MSS))
    return value


def options_from(args: argparse.Namespace) -> Options:
    return Options(args.timeout, dict(args.resolve), args.ca_file, big_hello=getattr(args, "big_hello", False),
                   source=getattr(args, "source", None))


def secrets_of(args: argparse.Namespace) -> List[str]:
    """The secret values among the arguments, whatever their spelling on the command line."""
    found = [s for s in (header_secret(h) for h in getattr(args, "header", [])) if s]
    for url in list(getattr(args, "urls", [])) + [getattr(args, "mirror", None) or ""]:
        found += url_secrets(url)
    return found


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="agent.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog="failure classes:\n" + "\n".join("  %-22s %s" % kv for kv in FAILURE_CLASSES.items()))
    sub = p.add_subparsers(dest="command", metavar="{http,pull,mss-sweep,facts}")  # and cycle, serve-metrics (the timer's)

    def common(sp: argparse.ArgumentParser, timeout: float, bounded: str = "a whole attempt") -> None:
        sp.add_argument("--timeout", type=seconds, default=timeout,
                        help="bound on %s, seconds (default %g); a TLS handshake gets 10x the TCP connect "
                        "time, at least %gs, within it" % (bounded, timeout, HANDSHAKE_FLOOR_S))
        sp.add_argument("--resolve", type=resolve_entry, action="append", default=[], metavar="HOST:PORT:ADDR", help="pin a name to an address, as curl's")
        sp.add_argument("--ca-file", type=ca_bundle, help="PEM bundle of CAs to trust instead of the system store")
        sp.add_argument("--json", action="store_true", help="print one netstab.probe/v1 JSON document")
        sp.add_argument("--quiet", action="store_true", help="no progress on stderr")

    source_help = "bind outgoing connections to this local address (a gateway probing as its VM subnet does)"
    h = sub.add_parser("http", help="timed HTTP(S) requests per phase")
    h.add_argument("urls", nargs="+", type=web_url, metavar="URL")
    h.add_argument("--repeat", type=count, default=1, help="attempts per URL (default 1)")
    h.add_argument("--interval", type=pause, default=0.0, help="seconds between rounds; without it all attempts overlap up to --concurrency")
    h.add_argument("--concurrency", type=threads, default=1, help="attempts at once (default 1)")
    h.add_argument("--header", "-H", type=header, action="append", default=[], help="extra request header; sensitive values are redacted in output")
    h.add_argument("--expect", type=expect_spec, default=status_ranges("200-399,401"), help="statuses that count as success (default 200-399,401)")
    h.add_argument("--big-hello", action="store_true", help="a ClientHello larger than one segment, like containerd's")
    h.add_argument("--source", type=source_address, metavar="ADDR", help=source_help)
    common(h, 10.0)

    pl = sub.add_parser("pull", help="registry-API image pull, digests verified")
    pl.add_argument("images", nargs="+", type=image, metavar="IMAGE")
    pl.add_argument("--repeat", type=count, default=1, help="pulls per image (default 1)")
    pl.add_argument("--mirror", type=web_url, help="mirror endpoint URL tried first; the upstream is the fallback")
    pl.add_argument("--no-fallback", action="store_true", help="with --mirror: do not fall back to the upstream (warm-up, mirror checks)")
    pl.add_argument("--runtime", choices=("api", "crictl"), default="api", help="crictl: pull with the node's runtime instead")
    pl.add_argument("--platform", type=platform_spec, default=default_platform(), help="OS/ARCH[/VARIANT] picked from an index (default: this machine)")
    pl.add_argument("--plain-http", action="append", default=[], metavar="REGISTRY", help="reach this registry over plain HTTP")
    pl.add_argument("--manifest-only", action="store_true", help="stop after the platform manifest and the first KiB of its config "
                    "blob (redirects to blob hosts followed): no layers; the record's mode is manifest")
    common(pl, 10.0, "each request of a pull (a blob's body gets 1s more per 128 KiB, at most %dx)" % BLOB_STRETCH)

    s = sub.add_parser("mss-sweep", help="find the largest working MSS: PMTU black-hole detection")
    s.add_argument("target", type=host_port, metavar="HOST[:PORT]")
    s.add_argument("--repeat", type=count, default=2, help="handshakes that confirm the working MSS (default 2)")
    s.add_argument("--parallel", type=threads, default=32, help="MSS values tried at once in each round of the search (default 32)")
    s.add_argument("--budget", type=seconds, default=90.0, help="no new search round after this many seconds (default 90)")
    s.add_argument("--max-mss", type=mss_value, help="highest MSS to try (default: route MTU - IP/TCP headers)")
    s.add_argument("--no-tracepath", action="store_true", help="skip tracepath evidence")
    s.add_argument("--tracepath-timeout", type=seconds, default=10.0, help="bound on tracepath, which runs beside the sweep and "
                   "stops when it ends (default 10)")
    s.add_argument("--source", type=source_address, metavar="ADDR", help=source_help)
    common(s, 3.0)

    f = sub.add_parser("facts", help="host network facts as JSON")
    f.add_argument("--json", action="store_true", default=True)
    add_cycle_parsers(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.error("choose a subcommand: http, pull, mss-sweep or facts (see --help)")
    if args.command == "facts":
        print(json.dumps({"schema": SCHEMA, "command": "facts", "host": facts()}, indent=2))
        return 0
    if args.command == "cycle":
        return run_cycle(args)
    if args.command == "serve-metrics":
        return serve_metrics(args)
    doc = run_document(args, argv, args.quiet)
    print(json.dumps(doc, indent=2) if args.json else table(doc))
    if doc["interrupted"]:
        return 130
    return 0 if doc["records"] and all(r["ok"] for r in doc["records"]) else 1


def run_document(args: argparse.Namespace, argv: List[str], quiet: bool) -> Dict[str, Any]:
    """Runs http, pull or mss-sweep as parsed in `args` and returns its document (Ctrl-C ends it
    early, with `interrupted` set): the command line and the continuous cycle share this."""
    args.resolve = dict(args.resolve)
    collector = Collector(quiet)
    runner = {"http": run_http, "pull": run_pull, "mss-sweep": run_sweep}[args.command]
    interrupted = False
    try:
        runner(args, collector)
    except KeyboardInterrupt:
        interrupted = True
    return document(args.command, argv, secrets_of(args), collector, interrupted)


# ---------------------------------------------------------------- metrics
#
# The Prometheus text exposition of probe documents, for node-exporter's textfile collector or the
# built-in listener. Every HELP string lives here (METRICS): a name in two files with two HELP texts
# loses a family (node_exporter collector/textfile.go). Label values come from the plan the caller
# gives (configured hosts, targets, roles) and from fixed enums (PROBES, RESULTS, PHASES,
# SWEEP_VERDICTS, SWEEP_PATHS), never from what a server answered; every series of the plan exists
# from the first run at 0, so which series exist never depends on the outcome.

METRIC_PREFIX = "netstab_probe_"
METRICS = {
    "attempts_total": ("counter", "Probe attempts by probe, target and result (ok or the agent's failure class)."),
    "phase_duration_seconds": ("histogram", "Duration of each phase of successful probe attempts (http: dns, connect, tls, ttfb, total; pulls: total)."),
    "last_success_timestamp_seconds": ("gauge", "Unix time of the target's last successful attempt (before any success: the store's first run)."),
    "sweeps_total": ("counter", "mss-sweeps run after a stalled handshake, by verdict."),
    "sweep_black_hole": ("gauge", "1 when this run's mss-sweep to the target found a PMTU black hole, else 0."),
    "sweep_working_mss_bytes": ("gauge", "The largest TCP MSS at which the last mss-sweep to the target completed TLS handshakes (NaN: never swept)."),
    "last_run_timestamp_seconds": ("gauge", "Unix time at which the last probe run finished."),
    "last_run_duration_seconds": ("gauge", "Wall-clock duration of the last probe run."),
    "interval_seconds": ("gauge", "The configured time between probe runs (a run is stale after three)."),
    "store_errors_total": ("counter", "Probe runs whose document, state or metrics could not be written (full disk, unwritable store)."),
}
# http_big_hello: an http attempt with a ClientHello larger than one segment; manifest: a pull
# that stops after the platform manifest (`pull --manifest-only`).
PROBES = ("http", "http_big_hello", "pull", "manifest")
RESULTS = ("ok",) + tuple(FAILURE_CLASSES)
PROBE_PHASES = {"http": PHASES, "http_big_hello": PHASES, "pull": ("total",), "manifest": ("total",)}
BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SWEEP_VERDICTS = ("black-hole", "clean", "clean-default", "unreachable", "failed")
# direct: a sweep to the endpoint's own host; blob-redirect: to a blob host a pull from the
# target's registry was redirected to (its name is the registry's answer, so it is no label)
SWEEP_PATHS = ("direct", "blob-redirect")
ROLES = ("node", "mirror", "reference")


def record_probe(rec: Dict[str, Any]) -> str:
    """The metrics' probe label of one record (one of PROBES, or "mss-sweep")."""
    kind = str(rec.get("kind") or "")
    if kind == "http":
        return "http_big_hello" if rec.get("big_hello") else "http"
    if kind == "pull":
        return "manifest" if rec.get("mode") == "manifest" else "pull"
    return kind


def record_label(rec: Dict[str, Any]) -> str:
    """A record's target label: an http URL without its scheme, or the image as configured."""
    target = str(rec.get("target", ""))
    return target.split("://", 1)[-1] if rec.get("kind") == "http" else target


def label_server(probe: str, target: str) -> str:
    """The host a target's sweeps go to: an http target's host, a pull's registry host."""
    if probe in ("http", "http_big_hello"):
        return urlsplit("https://" + target).hostname or target
    registry = parse_image(target).registry if target else target
    return "registry-1.docker.io" if registry == "docker.io" else registry.rsplit(":", 1)[0]


def new_state() -> Dict[str, Any]:
    """What the counters add up to across runs (kept in the store between cycles)."""
    return {"attempts": {}, "phases": {}, "sweeps": {}, "mss": {}, "last_success": {}, "since": None, "store_errors": 0}


def plan_of(docs: List[Dict[str, Any]]) -> List[Tuple[str, str]]:
    """(probe, target) pairs the documents probed, in first-seen order: the plan when none is given."""
    seen: List[Tuple[str, str]] = []
    for doc in docs:
        for rec in doc.get("records") or []:
            pair = (record_probe(rec), record_label(rec))
            if pair[0] in PROBES and pair not in seen:
                seen.append(pair)
    return seen


def sweep_key(doc: Dict[str, Any], plan: List[Tuple[str, str]]) -> Optional[Tuple[str, str]]:
    """(target label's server, path) of a sweep document: direct when it swept a planned server,
    blob-redirect when a planned pull was redirected to the host it swept, else None."""
    sweep = doc.get("mss_sweep") or {}
    swept = str(sweep.get("target") or "").rsplit(":", 1)[0].strip("[]")
    servers = {label_server(p, t) for p, t in plan}
    if swept in servers:
        return swept, "direct"
    for other in doc.get("redirected_from") or []:  # the cycle runner says which registry sent it there
        if other in servers:
            return other, "blob-redirect"
    return None


def account(state: Dict[str, Any], docs: List[Dict[str, Any]], plan: List[Tuple[str, str]], blob_hosts: Optional[Dict[str, str]] = None) -> None:
    """Adds the documents' attempts, phases and sweeps to `state`. `blob_hosts`: blob host -> the
    registry whose pull was redirected there (sweeps to them count for that registry)."""
    planned = set(plan)
    this_run: Dict[str, int] = {}
    for doc in docs:
        sweep = doc.get("mss_sweep")
        if isinstance(sweep, dict):
            swept = str(sweep.get("target") or "").rsplit(":", 1)[0].strip("[]")
            if blob_hosts and swept in blob_hosts and not doc.get("redirected_from"):
                doc = dict(doc, redirected_from=[blob_hosts[swept]])
            key = sweep_key(doc, plan)
            if key is None:
                continue
            name = "\t".join(key)
            verdict = str(sweep.get("verdict")) if sweep.get("verdict") in SWEEP_VERDICTS else "failed"
            counts = state["sweeps"].setdefault(name, {})
            counts[verdict] = counts.get(verdict, 0) + 1
            this_run[name] = max(this_run.get(name, 0), 1 if sweep.get("black_hole") else 0)
            if isinstance(sweep.get("working_mss"), int):
                state["mss"][name] = sweep["working_mss"]
            continue
        for rec in doc.get("records") or []:
            probe, target = record_probe(rec), record_label(rec)
            if (probe, target) not in planned:
                continue
            name = probe + "\t" + target
            result = "ok" if rec.get("ok") else str(rec.get("error_class"))
            if result not in RESULTS:
                result = "runtime_error" if probe in ("pull", "manifest") else "bad_response"
            counts = state["attempts"].setdefault(name, {})
            counts[result] = counts.get(result, 0) + 1
            when = unix_time(rec.get("timestamp"))
            if when is not None and state.get("since") is None:
                state["since"] = when
            if rec.get("ok") and when is not None:
                state["last_success"][name] = max(when, state["last_success"].get(name, when))
            if rec.get("ok"):
                for phase in PROBE_PHASES[probe]:
                    value = (rec.get("phases_ms") or {}).get(phase)
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                        observe(state["phases"].setdefault(name + "\t" + phase, {"buckets": [0] * len(BUCKETS_S), "sum": 0.0, "count": 0}), value / 1000.0)
    state["black_hole"] = this_run


def observe(hist: Dict[str, Any], seconds_: float) -> None:
    for index, bound in enumerate(BUCKETS_S):
        if seconds_ <= bound:
            hist["buckets"][index] += 1
    hist["sum"] = round(hist["sum"] + seconds_, 6)
    hist["count"] += 1


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def number(value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class HostView(object):
    """One host's series: its counters (`state`), its plan, its last run."""

    def __init__(self, host: str, role: str, state: Dict[str, Any], plan: List[Tuple[str, str]],
                 last_run: Optional[float] = None, duration: Optional[float] = None, interval: Optional[float] = None):
        self.host, self.role, self.state, self.plan = host, role, state, plan
        self.last_run, self.duration, self.interval = last_run, duration, interval


def exposition(views: List[HostView]) -> str:
    """The text exposition (format 0.0.4) of each host's state: every planned series, zeros included."""
    families: Dict[str, List[str]] = {name: [] for name in METRICS}
    for view in views:
        expose(view, families)
    lines: List[str] = []
    for family, samples in families.items():
        kind, text = METRICS[family]
        lines += ["# HELP %s%s %s" % (METRIC_PREFIX, family, text), "# TYPE %s%s %s" % (METRIC_PREFIX, family, kind)] + samples
    return "\n".join(lines) + "\n"


def expose(view: HostView, families: Dict[str, List[str]]) -> None:
    base = [("host", view.host), ("role", view.role)]
    state = view.state

    def sample(family: str, labels: List[Tuple[str, str]], value: float, suffix: str = "") -> None:
        text = ",".join('%s="%s"' % (k, escape_label(v)) for k, v in base + labels)
        families[family].append("%s%s%s{%s} %s" % (METRIC_PREFIX, family, suffix, text, number(value)))

    for probe, target in view.plan:
        name = probe + "\t" + target
        counts = state["attempts"].get(name, {})
        for result in RESULTS:
            sample("attempts_total", [("probe", probe), ("target", target), ("result", result)], counts.get(result, 0))
        since = state["last_success"].get(name, state.get("since"))
        sample("last_success_timestamp_seconds", [("probe", probe), ("target", target)], float(since) if since is not None else float("nan"))
        for phase in PROBE_PHASES[probe]:
            hist = state["phases"].get(name + "\t" + phase) or {"buckets": [0] * len(BUCKETS_S), "sum": 0.0, "count": 0}
            labels = [("probe", probe), ("target", target), ("phase", phase)]
            for index, bound in enumerate(BUCKETS_S):  # no zip(strict=) before Python 3.10
                sample("phase_duration_seconds", labels + [("le", number(float(bound)))], hist["buckets"][index], "_bucket")
            sample("phase_duration_seconds", labels + [("le", "+Inf")], hist["count"], "_bucket")
            sample("phase_duration_seconds", labels, float(hist["sum"]), "_sum")
            sample("phase_duration_seconds", labels, hist["count"], "_count")
    sweep_targets: List[Tuple[str, str]] = []
    for probe, target in view.plan:
        server = label_server(probe, target)
        for key in [(server, "direct")] + ([] if probe in ("http", "http_big_hello") else [(server, "blob-redirect")]):
            if key not in sweep_targets:
                sweep_targets.append(key)
    for server, path in sweep_targets:
        name = server + "\t" + path
        labels = [("target", server), ("path", path)]
        counts = state["sweeps"].get(name, {})
        for verdict in SWEEP_VERDICTS:
            sample("sweeps_total", labels + [("verdict", verdict)], counts.get(verdict, 0))
        sample("sweep_black_hole", labels, (state.get("black_hole") or {}).get(name, 0))
        mss = state["mss"].get(name)
        sample("sweep_working_mss_bytes", labels, float(mss) if mss is not None else float("nan"))
    sample("last_run_timestamp_seconds", [], float(view.last_run) if view.last_run is not None else float("nan"))
    sample("last_run_duration_seconds", [], float(view.duration) if view.duration is not None else float("nan"))
    sample("interval_seconds", [], float(view.interval) if view.interval is not None else float("nan"))
    sample("store_errors_total", [], state.get("store_errors", 0))


def unix_time(text: Any) -> Optional[float]:
    """Unix seconds of the agent's UTC ISO 8601 stamps (with or without microseconds), or None."""
    for form in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(str(text), form).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    return None


def document_times(doc: Dict[str, Any]) -> Tuple[Optional[float], Optional[float]]:
    """(finished, duration) of a document in Unix seconds."""
    started, finished = unix_time(doc.get("started")), unix_time(doc.get("finished"))
    return finished, (finished - started if finished is not None and started is not None else None)


def blob_hosts_of(docs: List[Dict[str, Any]]) -> Dict[str, str]:
    """Blob host -> the registry whose pull was redirected there, from the pulls' `hosts`."""
    out: Dict[str, str] = {}
    for doc in docs:
        for rec in doc.get("records") or []:
            if rec.get("kind") != "pull" or not isinstance(rec.get("hosts"), list):
                continue
            registry = label_server("pull", record_label(rec))
            for other in rec["hosts"][1:]:
                name = str(other).rsplit(":", 1)[0]
                if name != registry:
                    out.setdefault(name, registry)
    return out


# ---------------------------------------------------------------- manifest checks


class ManifestCheck(Puller):
    """`pull --manifest-only`: the index, the platform manifest (both digest-checked) and the first
    KiB of the config blob, following its redirect, so a blob host's TLS handshake is tried too;
    no layers. A cheap check a timer can run every few minutes on every node."""

    def pull(self) -> str:
        manifest, media_type, digest = self.manifest(self.ref.reference)
        if media_type in INDEX_TYPES or "manifests" in manifest:
            child = self.pick_platform(manifest)
            manifest, media_type, digest = self.manifest(child)
        config = manifest.get("config")
        blob = config.get("digest") if isinstance(config, dict) else None
        if not isinstance(blob, str) or not DIGEST.match(blob):
            raise ProbeFailure("registry_error", "manifest %s names no usable config blob" % digest)
        self.get("/v2/%s/blobs/%s" % (self.ref.repository, blob), "config-head", ["Range: bytes=0-1023"], accept=(200, 206))
        return digest


# ---------------------------------------------------------------- cycle
#
# `cycle --config FILE`: what the netstab-probe timer runs every interval on every node, the mirror
# VM and the Proxmox host. The cheap set (http on every endpoint, a few repeats and one big hello
# each; a manifest check of each test image), then an mss-sweep to every host whose TLS handshake
# stalled (redirected blob hosts included, up to max_sweeps). The run's documents go to a bounded
# store (one run-*.json per run, rotated by age and size), the counters to state.json beside them,
# and the metrics file is replaced atomically (NAME.prom.<pid>, then os.replace). Nothing here may
# block the node: a write that fails (full disk, read-only store) is counted in
# netstab_probe_store_errors_total and the run goes on. Exit 0 (probe failures are data), 2 on a bad config.

CYCLE_DEFAULTS: Dict[str, Any] = {
    "role": "node", "interval_seconds": 300, "repeats": 3, "timeout_seconds": 5.0, "concurrency": 8, "mirrors": {},
    "plain_http": [], "platform": None, "ca_file": None, "resolve": [], "store": "/var/lib/netstab/probes", "retention_hours": 24,
    "max_store_bytes": 50 * 1024 * 1024, "textfile_dir": "/var/lib/prometheus/node-exporter", "max_sweeps": 3,
    "sweep_budget_seconds": 30.0, "tracepath_timeout_seconds": 5.0,
}
METRICS_FILE = "netstab_probe.prom"
STATE_FILE = "state.json"
RUN_GLOB = re.compile(r"^run-\d{8}T\d{6}Z-\d+\.json$")
STALL_HOST = re.compile(r"TLS handshake with (\S+) did not finish")


def load_cycle_config(path: str) -> Dict[str, Any]:
    """The JSON the config renders (one object); every field checked before any packet is sent."""
    try:
        with open(path) as handle:
            raw = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ValueError("%s: cannot read it as JSON (%s)" % (path, exc)) from None
    if not isinstance(raw, dict):
        raise ValueError("%s: not a JSON object" % path)
    cfg: Dict[str, Any] = dict(CYCLE_DEFAULTS)
    cfg.update(raw)
    unknown = sorted(set(raw) - set(CYCLE_DEFAULTS) - {"host", "endpoints", "images"})
    if unknown:
        raise ValueError("unknown key(s): %s" % ", ".join(unknown))
    if not isinstance(cfg.get("host"), str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", cfg["host"]):
        raise ValueError("host: a host name is required")
    if cfg["role"] not in ROLES:
        raise ValueError("role: one of %s" % ", ".join(ROLES))
    for key in ("interval_seconds", "timeout_seconds", "retention_hours", "max_store_bytes", "sweep_budget_seconds", "tracepath_timeout_seconds"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], (int, float)) or not cfg[key] > 0:
            raise ValueError("%s: a positive number" % key)
    for key in ("repeats", "concurrency", "max_sweeps"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] < (0 if key == "max_sweeps" else 1):
            raise ValueError("%s: a whole number" % key)
    for key in ("store",) + (("textfile_dir",) if cfg["textfile_dir"] is not None else ()):
        if not isinstance(cfg[key], str) or not os.path.isabs(cfg[key]):
            raise ValueError("%s: an absolute path" % key)
    if not isinstance(cfg.get("endpoints", []), list) or not isinstance(cfg.get("images", []), list):
        raise ValueError("endpoints and images: lists")
    if not isinstance(cfg["mirrors"], dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in cfg["mirrors"].items()):
        raise ValueError("mirrors: an object of image -> mirror URL")
    cfg.setdefault("endpoints", [])
    cfg.setdefault("images", [])
    if not cfg["endpoints"] and not cfg["images"]:
        raise ValueError("nothing to probe: give endpoints or images")
    bound = config_bound_s(cfg)
    if cfg["interval_seconds"] < bound:
        raise ValueError("interval_seconds: %g is shorter than one cycle can take with these settings (%g s)" % (cfg["interval_seconds"], bound))
    for argv in cycle_commands(cfg):  # the same checks as the command line: a bad URL or image is refused here
        try:
            parser().parse_args(argv)
        except SystemExit:
            raise ValueError("the probe command %s is not valid (the line above says why)" % redact_text(" ".join(argv[:1]))) from None
    return cfg


def _common_argv(cfg: Dict[str, Any]) -> List[str]:
    argv = ["--timeout", str(cfg["timeout_seconds"]), "--quiet"]
    if cfg["ca_file"]:
        argv += ["--ca-file", cfg["ca_file"]]
    for entry in cfg["resolve"]:
        argv += ["--resolve", entry]
    return argv


def cycle_commands(cfg: Dict[str, Any]) -> List[List[str]]:
    """The cheap set, as the agent's own command lines."""
    out = []
    common = _common_argv(cfg)
    if cfg["endpoints"]:
        out.append(["http"] + list(cfg["endpoints"]) + ["--repeat", str(cfg["repeats"]), "--concurrency", str(cfg["concurrency"])] + common)
        out.append(["http"] + list(cfg["endpoints"]) + ["--big-hello", "--concurrency", str(cfg["concurrency"])] + common)
    for image_ in cfg["images"]:  # one command each: the cycle runs them at once
        argv = ["pull", "--manifest-only", image_] + common
        if cfg["mirrors"].get(image_):  # the mirror instance serving this image's registry; the upstream stays the fallback
            argv += ["--mirror", cfg["mirrors"][image_]]
        for registry in cfg["plain_http"]:
            argv += ["--plain-http", registry]
        if cfg["platform"]:
            argv += ["--platform", cfg["platform"]]
        out.append(argv)
    return out


# A manifest check's requests, at most: token, index, platform manifest, config blob, its redirect,
# and one more auth round; each bounded by the timeout; with a mirror, the upstream fallback doubles it.
MANIFEST_REQUESTS = 6
SWEEP_OVERRUN_S = 10.0  # a sweep's last round and tracepath may end this long after its budget


def cycle_bound_s(endpoints: int, images: int, repeats: int, timeout: float, concurrency: int, mirror: bool,
                  max_sweeps: int, sweep_budget: float) -> float:
    """The longest one cycle can take with these settings: every attempt timing out. The interval
    must be longer, or runs would queue behind each other (the config refuses it)."""
    rounds = -(-endpoints * repeats // concurrency) + -(-endpoints // concurrency)
    manifests = (MANIFEST_REQUESTS * timeout * (2 if mirror else 1)) if images else 0.0
    return rounds * timeout + manifests + max_sweeps * (sweep_budget + SWEEP_OVERRUN_S)


def config_bound_s(cfg: Dict[str, Any]) -> float:
    return cycle_bound_s(len(cfg["endpoints"]), len(cfg["images"]), cfg["repeats"], float(cfg["timeout_seconds"]), cfg["concurrency"],
                         bool(cfg["mirrors"]), cfg["max_sweeps"], float(cfg["sweep_budget_seconds"]))


def cycle_plan(cfg: Dict[str, Any]) -> List[Tuple[str, str]]:
    """The series this host exports: fixed by its config, whatever the outcome."""
    plan = []
    for probe in ("http", "http_big_hello"):
        plan += [(probe, redact_url(url).split("://", 1)[-1]) for url in cfg["endpoints"]]
    plan += [("manifest", image_) for image_ in cfg["images"]]
    return plan


def sub_document(argv: List[str]) -> Dict[str, Any]:
    """Runs one of the agent's subcommands in this process and returns its document."""
    return run_document(parser().parse_args(argv), argv, quiet=True)


def stalled_hosts(docs: List[Dict[str, Any]], cfg: Dict[str, Any]) -> List[Tuple[str, int, Optional[str]]]:
    """(host, port, the registry that sent a pull there or None) of every TLS handshake that
    stalled, in first-seen order: the endpoints' own hosts, registries, blob and token hosts."""
    out: List[Tuple[str, int, Optional[str]]] = []
    plain = set(cfg["plain_http"])

    def add(host: str, port: int, via: Optional[str]) -> None:
        if host and all(h != host for h, _, _ in out):
            out.append((host, port, via))

    for doc in docs:
        for rec in doc.get("records") or []:
            if rec.get("error_class") != "tls_handshake_timeout" and not any(
                    f.get("error_class") == "tls_handshake_timeout" for f in rec.get("fallbacks") or []):
                continue
            if rec.get("kind") == "http":
                parts = urlsplit(str(rec["target"]))
                add(parts.hostname or "", parts.port or 443, None)
                continue
            registry = label_server("pull", str(rec["target"]))
            texts = [str(rec.get("error") or "")] + [str(f.get("error") or "") for f in rec.get("fallbacks") or []]
            for text in texts:
                match = STALL_HOST.search(text)
                if match and match.group(1) not in plain:
                    name = match.group(1)
                    add(name, 443, None if name == registry else registry)
    return out


def write_atomically(path: str, text: str) -> None:
    """NAME.<pid> in the same directory, then os.replace over NAME: a reader (node-exporter's
    textfile collector) sees the old file or the new one, never half of one."""
    import contextlib

    temporary = "%s.%d" % (path, os.getpid())
    try:
        with open(temporary, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def rotate_store(store: str, retention_s: float, max_bytes: int, now: float) -> int:
    """Removes runs older than the retention, then the oldest until the store fits its byte cap
    (the newest run always stays). Returns how many were removed."""
    runs = []
    for name in os.listdir(store):
        if RUN_GLOB.match(name):
            path = os.path.join(store, name)
            try:
                info = os.stat(path)
            except OSError:
                continue
            runs.append((name, path, info.st_size, info.st_mtime))
        elif re.match(r"^run-.*\.json\.\d+$", name):  # a temporary file a killed run left
            try:
                if now - os.stat(os.path.join(store, name)).st_mtime > 3600:
                    os.unlink(os.path.join(store, name))
            except OSError:
                pass
    runs.sort()
    removed = 0
    keep = []
    for name, path, size, mtime in runs:
        if now - mtime > retention_s and name != runs[-1][0]:
            os.unlink(path)
            removed += 1
        else:
            keep.append((path, size))
    total = sum(size for _, size in keep)
    while len(keep) > 1 and total > max_bytes:
        path, size = keep.pop(0)
        os.unlink(path)
        total -= size
        removed += 1
    return removed


def load_state(store: str) -> Dict[str, Any]:
    try:
        with open(os.path.join(store, STATE_FILE)) as handle:
            state = json.load(handle)
        if isinstance(state, dict) and all(k in state for k in new_state()):
            return state
    except (OSError, ValueError):
        pass
    return new_state()  # counters restart from zero: Prometheus reads that as a counter reset


def cycle_log(message: str) -> None:
    sys.stderr.write("netstab-probe cycle: %s\n" % message)
    sys.stderr.flush()


def run_cycle(args: argparse.Namespace) -> int:
    try:
        cfg = load_cycle_config(args.config)
    except ValueError as exc:
        sys.stderr.write("agent.py cycle: error: %s\n" % redact_text(str(exc)))
        return 2
    started = time.monotonic()
    commands = cycle_commands(cfg)
    docs = [sub_document(argv) for argv in commands if argv[0] == "http"]
    pulls = [argv for argv in commands if argv[0] == "pull"]
    if pulls:
        with ThreadPoolExecutor(max_workers=min(len(pulls), cfg["concurrency"])) as pool:
            docs += list(pool.map(sub_document, pulls))
    stalled = stalled_hosts(docs, cfg)
    for host, port, via in stalled[: cfg["max_sweeps"]]:
        argv = ["mss-sweep", "%s:%d" % (host if ":" not in host else "[%s]" % host, port), "--budget", str(cfg["sweep_budget_seconds"]),
                "--tracepath-timeout", str(cfg["tracepath_timeout_seconds"])] + _common_argv(cfg)[2:] + ["--quiet"]
        doc = sub_document(argv)
        if via:
            doc["redirected_from"] = [via]
        docs.append(doc)
    duration = time.monotonic() - started
    finished = time.time()
    return finish_cycle(cfg, docs, finished, duration)


def finish_cycle(cfg: Dict[str, Any], docs: List[Dict[str, Any]], finished: float, duration: float) -> int:
    """Store, state and metrics; every failure counted, none fatal."""
    store = cfg["store"]
    errors = 0
    try:
        os.makedirs(store, exist_ok=True)
        stamp = datetime.fromtimestamp(finished, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        write_atomically(os.path.join(store, "run-%s-%d.json" % (stamp, os.getpid())), json.dumps(docs, separators=(",", ":")))
    except OSError as exc:
        errors += 1
        cycle_log("cannot store the run in %s: %s" % (store, exc.strerror or exc))
    try:
        rotate_store(store, cfg["retention_hours"] * 3600.0, int(cfg["max_store_bytes"]), time.time())
    except OSError as exc:
        errors += 1
        cycle_log("cannot rotate %s: %s" % (store, exc.strerror or exc))
    state = load_state(store)
    plan = cycle_plan(cfg)
    account(state, docs, plan)
    state["store_errors"] = int(state.get("store_errors", 0)) + errors
    saved = save_state(store, state)
    if not saved:
        state["store_errors"] += 1
    view = HostView(cfg["host"], cfg["role"], state, plan, finished, duration, float(cfg["interval_seconds"]))
    target = os.path.join(cfg["textfile_dir"] or store, METRICS_FILE)
    try:
        write_atomically(target, exposition([view]))
    except OSError as exc:
        cycle_log("cannot write the metrics %s: %s" % (target, exc.strerror or exc))
        state["store_errors"] += 1
        save_state(store, state)
    return 0


def save_state(store: str, state: Dict[str, Any]) -> bool:
    try:
        write_atomically(os.path.join(store, STATE_FILE), json.dumps(state, separators=(",", ":")))
        return True
    except OSError as exc:
        cycle_log("cannot save the counters in %s: %s" % (store, exc.strerror or exc))
        return False


# ---------------------------------------------------------------- metrics listener


def serve_metrics(args: argparse.Namespace) -> int:
    """`serve-metrics --listen ADDR:PORT --file PATH`: GET /metrics answers the file the cycle wrote
    (what node-exporter's textfile collector would read), for hosts without node-exporter."""
    import contextlib
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    path = args.file

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *rest: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            try:
                with open(path, "rb") as handle:
                    body = handle.read()
            except OSError:
                body = b""  # no run yet: an empty exposition, and NetstabProbeStale says why
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    host, port = args.listen

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        daemon_threads = True

    server = Server((host, port), Handler)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def add_cycle_parsers(sub: Any) -> None:
    c = sub.add_parser("cycle", help="one monitoring run: the cheap set, sweeps of stalled hosts, store and metrics")
    c.add_argument("--config", required=True, metavar="FILE", help="the JSON the stack renders (see probes/README.md)")
    m = sub.add_parser("serve-metrics", help="serve the cycle's metrics file at /metrics")
    m.add_argument("--listen", type=host_port, required=True, metavar="ADDR:PORT", help="the address to bind (the node's VM-subnet address)")
    m.add_argument("--file", required=True, help="the metrics file the cycle writes")


if __name__ == "__main__":
    sys.exit(main())
