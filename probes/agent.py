#!/usr/bin/env python3
"""netstab probe agent: evidence about a node's egress path, standard library only (Python 3.8+).

Runs on a node as `python3 - SUBCOMMAND ARGS < agent.py`, or by hand as `python3 agent.py ...`.

  http URL...          timed HTTP(S) requests, one duration per phase (dns, connect, tls, ttfb, total)
  pull IMAGE...        a registry-API pull without a container runtime (or `--runtime crictl`)
  mss-sweep HOST[:P]   finds the largest TCP MSS at which TLS handshakes complete: PMTU black holes
  facts                hostname, interfaces and MTUs, default routes, resolvers, tcp_mtu_probing

Every failed attempt gets exactly one class from FAILURE_CLASSES. Output is a table, or with
--json one `netstab.probe/v1` document. Exit 0: every attempt succeeded; 1: any failed; 2: usage.
"""

from __future__ import annotations

import argparse
import hashlib
import json
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
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urljoin, urlsplit

SCHEMA = "netstab.probe/v1"
AGENT_VERSION = "1.0"
USER_AGENT = "netstab-probe/" + AGENT_VERSION

# The fixed set of failure classes. Each failed attempt carries exactly one.
FAILURE_CLASSES = {
    "dns_error": "the name did not resolve (or resolution timed out)",
    "connect_timeout": "no TCP connection within the timeout (SYN unanswered)",
    "connect_refused": "the remote host refused the TCP connection",
    "connect_error": "TCP connection failed otherwise (unreachable network or host)",
    "tls_handshake_timeout": "TCP connected, the TLS handshake did not finish: the PMTU black-hole signature",
    "tls_error": "the TLS handshake failed (certificate, protocol, reset)",
    "read_timeout": "connected and sent, but the response stalled",
    "http_status": "a response arrived with a status outside the expected set",
    "digest_mismatch": "pull: downloaded content does not match its sha256 digest",
    "registry_error": "pull: the registry answered something the pull cannot use (auth, manifest, platform)",
    "runtime_error": "pull --runtime: the container runtime failed for another reason",
}
PHASES = ("dns", "connect", "tls", "ttfb", "total")
SENSITIVE_HEADER = re.compile(r"(authorization|cookie|token|secret|api-?key|password)", re.I)
REDACTED = "<redacted>"
TCP_MAXSEG = getattr(socket, "TCP_MAXSEG", 2)
IP_MTU, IPV6_MTU = 14, 24
MIN_MSS = 536


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


def redact_header(header: str) -> str:
    name, sep, _value = header.partition(":")
    return name + sep + " " + REDACTED if sep and SENSITIVE_HEADER.search(name) else header


def redact_url(url: str) -> str:
    """Drop userinfo and sensitive query values from a URL before it reaches any output."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1] if "@" in parts.netloc else parts.netloc
    query = "&".join(
        (k + "=" + REDACTED) if SENSITIVE_HEADER.search(k) else (k + ("=" + v if eq else ""))
        for k, eq, v in (p.partition("=") for p in parts.query.split("&") if p)
    )
    return parts._replace(netloc=netloc, query=query).geturl()


def redact_argv(argv: List[str]) -> List[str]:
    out, hide_next = [], False
    for arg in argv:
        if hide_next:
            out.append(redact_header(arg))
            hide_next = False
        elif arg in ("--header", "-H"):
            out.append(arg)
            hide_next = True
        elif arg.startswith("--header="):
            out.append("--header=" + redact_header(arg[len("--header=") :]))
        elif "://" in arg:
            out.append(redact_url(arg))
        else:
            out.append(arg)
    return out


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


class Options(object):
    """Connection settings shared by every request of a run."""

    def __init__(
        self,
        timeout: float = 10.0,
        resolve: Optional[Dict[Tuple[str, int], str]] = None,
        ca_file: Optional[str] = None,
        big_hello: bool = False,
        mss: Optional[int] = None,
    ):
        self.timeout = timeout
        self.resolve = resolve or {}
        self.ca_file = ca_file
        self.big_hello = big_hello
        self.mss = mss


def big_hello_alpn() -> List[str]:
    """An ALPN list that pushes the ClientHello to ~1.6 KB, like a Go >= 1.24 client's
    X25519MLKEM768 hello: the first flight no longer fits one 1400-MTU segment.
    `http/1.1` stays first because this probe speaks HTTP/1.1; `h2` is still offered."""
    padding = ["netstab-pad-%02d-" % i + "x" * 230 for i in range(5)]
    return ["http/1.1", "h2"] + padding


def tls_context(opts: Options) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=opts.ca_file) if opts.ca_file else ssl.create_default_context()
    ctx.set_alpn_protocols(big_hello_alpn() if opts.big_hello else ["http/1.1"])
    return ctx


def resolve(host: str, port: int, opts: Options, phases: Dict[str, float]) -> Tuple[int, str]:
    """Address family and IP for host:port, honouring --resolve; bounded by the timeout."""
    start = time.monotonic()
    pinned = opts.resolve.get((host, port))
    if pinned:
        phases["dns"] = 0.0
        return (socket.AF_INET6 if ":" in pinned else socket.AF_INET), pinned
    box: Dict[str, Any] = {}

    def lookup() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            box["error"] = exc

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(opts.timeout)
    phases["dns"] = ms(start)
    if worker.is_alive():
        raise ProbeFailure("dns_error", "resolving %s timed out after %.1fs" % (host, opts.timeout))
    if "error" in box:
        raise ProbeFailure("dns_error", "resolving %s: %s" % (host, box["error"]))
    family, _, _, _, addr = box["infos"][0]
    return family, addr[0]


def connect(family: int, ip: str, port: int, opts: Options, phases: Dict[str, float]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As curl does: without it, Nagle holds the request behind the un-ACKed TLS Finished (+1 RTT).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if opts.mss:
        # Before connect: the SYN advertises this MSS, and our own segments are capped by it too.
        sock.setsockopt(socket.IPPROTO_TCP, TCP_MAXSEG, opts.mss)
    sock.settimeout(opts.timeout)
    start = time.monotonic()
    try:
        sock.connect((ip, port))
    except socket.timeout:
        sock.close()
        raise ProbeFailure("connect_timeout", "TCP connect to %s:%d timed out after %.1fs" % (ip, port, opts.timeout)) from None
    except ConnectionRefusedError:
        sock.close()
        raise ProbeFailure("connect_refused", "TCP connect to %s:%d refused" % (ip, port)) from None
    except OSError as exc:
        sock.close()
        raise ProbeFailure("connect_error", "TCP connect to %s:%d: %s" % (ip, port, exc.strerror or exc)) from None
    phases["connect"] = ms(start)
    return sock


def handshake(sock: socket.socket, host: str, opts: Options, phases: Dict[str, float]) -> ssl.SSLSocket:
    start = time.monotonic()
    tls = tls_context(opts).wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    try:
        tls.do_handshake()
    except socket.timeout:
        raise ProbeFailure("tls_handshake_timeout", "TLS handshake with %s timed out after %.1fs" % (host, opts.timeout), tcp_info(tls)) from None
    except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
        raise ProbeFailure("tls_error", "TLS handshake with %s: %s" % (host, getattr(exc, "reason", None) or exc), tcp_info(tls)) from None
    phases["tls"] = ms(start)
    return tls


class Response(object):
    def __init__(self) -> None:
        self.status = 0
        self.headers: Dict[str, str] = {}
        self.body = b""
        self.bytes = 0
        self.remote_ip = ""
        self.remote_port = 0
        self.tls_version: Optional[str] = None
        self.phases: Dict[str, float] = {}
        self.kernel: Optional[Dict[str, int]] = None


def exchange(
    url: str,
    opts: Options,
    headers: Optional[List[str]] = None,
    sink: Optional[Callable[[bytes], None]] = None,
) -> Response:
    """One HTTP/1.1 request on a fresh connection, each phase timed. Body goes to `sink` if given
    (streamed, for large blobs), else into `Response.body`. Raises ProbeFailure."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    resp = Response()
    phases = resp.phases
    started = time.monotonic()
    try:
        return _exchange(resp, parts, host, port, secure, opts, headers, sink, started)
    except ProbeFailure as failure:
        failure.phases = dict(phases)
        failure.remote = (resp.remote_ip, port) if resp.remote_ip else None
        raise


def _exchange(
    resp: Response, parts: Any, host: str, port: int, secure: bool, opts: Options,
    headers: Optional[List[str]], sink: Optional[Callable[[bytes], None]], started: float,
) -> Response:
    phases = resp.phases
    family, ip = resolve(host, port, opts, phases)
    resp.remote_ip, resp.remote_port = ip, port
    sock: socket.socket = connect(family, ip, port, opts, phases)
    try:
        if secure:
            sock = handshake(sock, host, opts, phases)
            resp.tls_version = sock.version()
        else:
            phases["tls"] = 0.0
        send_request(sock, parts, host, port, secure, headers or [])
        sent = time.monotonic()
        reader = sock.makefile("rb")
        try:
            status_line = reader.readline(65537)
            phases["ttfb"] = ms(sent)
            if not status_line:
                raise ProbeFailure("read_timeout", "connection closed before any response from %s" % host, tcp_info(sock))
            resp.status = parse_status(status_line, host)
            resp.headers = read_headers(reader)
            # Only a 200 carries content for the sink; an auth or redirect body is kept aside.
            target = sink if sink is not None and resp.status == 200 else (lambda chunk: _append(resp, chunk))
            resp.bytes = read_body(reader, resp.headers, target)
        except socket.timeout:
            raise ProbeFailure("read_timeout", "response from %s stalled for %.1fs" % (host, opts.timeout), tcp_info(sock)) from None
        except (ssl.SSLError, ConnectionError) as exc:
            raise ProbeFailure("read_timeout" if "timed out" in str(exc) else "tls_error", "reading from %s: %s" % (host, exc), tcp_info(sock)) from None
        resp.kernel = tcp_info(sock)
    finally:
        sock.close()
    phases["total"] = ms(started)
    return resp


def _append(resp: Response, chunk: bytes) -> None:
    resp.body += chunk


def send_request(sock: socket.socket, parts: Any, host: str, port: int, secure: bool, headers: List[str]) -> None:
    default_port = 443 if secure else 80
    host_header = host if port == default_port else "%s:%d" % (host, port)
    if ":" in host and not host.startswith("["):
        host_header = "[%s]" % host if port == default_port else "[%s]:%d" % (host, port)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    lines = ["GET %s HTTP/1.1" % path, "Host: " + host_header, "User-Agent: " + USER_AGENT, "Accept: */*", "Connection: close"]
    lines += headers
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def parse_status(line: bytes, host: str) -> int:
    match = re.match(rb"HTTP/\d(?:\.\d)? (\d{3})", line)
    if not match:
        raise ProbeFailure("tls_error", "%s did not answer HTTP: %r" % (host, line[:60]))
    return int(match.group(1))


def read_headers(reader: Any) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    while True:
        line = reader.readline(65537)
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        key = name.strip().lower()
        headers[key] = (headers[key] + ", " if key in headers else "") + value.strip()


def read_body(reader: Any, headers: Dict[str, str], sink: Callable[[bytes], None]) -> int:
    total = 0
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int(reader.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                reader.readline(1024)
                return total
            for chunk in read_exact(reader, size):
                sink(chunk)
                total += len(chunk)
            reader.readline(1024)
    length = headers.get("content-length")
    chunks = read_exact(reader, int(length)) if length is not None else iter(lambda: reader.read(65536), b"")
    for chunk in chunks:
        sink(chunk)
        total += len(chunk)
    return total


def read_exact(reader: Any, size: int) -> Iterator[bytes]:
    while size > 0:
        chunk = reader.read(min(size, 65536))
        if not chunk:
            raise ConnectionError("connection closed %d bytes before the end of the body" % size)
        size -= len(chunk)
        yield chunk


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


def parse_expect(text: str) -> Callable[[int], bool]:
    """'200-399,401' -> predicate. A registry's 401 on /v2/ means reachable, so it is in the default."""
    ranges = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        ranges.append((int(low), int(high or low)))
    return lambda status: any(lo <= status <= hi for lo, hi in ranges)


def http_attempt(url: str, attempt: int, opts: Options, headers: List[str], expect: Callable[[int], bool]) -> Dict[str, Any]:
    rec = record("http", redact_url(url), attempt, big_hello=opts.big_hello)
    try:
        resp = exchange(url, opts, headers)
    except ProbeFailure as failure:
        return failed(rec, failure)
    rec.update(
        remote_ip=resp.remote_ip,
        remote_port=resp.remote_port,
        phases_ms=resp.phases,
        status=resp.status,
        bytes=resp.bytes,
        tls_version=resp.tls_version,
    )
    if expect(resp.status):
        rec["ok"] = True
        return rec
    return failed(rec, ProbeFailure("http_status", "HTTP %d from %s is not an expected status" % (resp.status, urlsplit(url).hostname)))


def run_http(args: argparse.Namespace, sink: "Collector") -> None:
    opts = options_from(args)
    expect = parse_expect(args.expect)
    jobs = [(url, n) for n in range(1, args.repeat + 1) for url in args.urls]
    sink.total = len(jobs)
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        for n in range(1, args.repeat + 1):
            round_jobs = [url for url, k in jobs if k == n]
            for rec in pool.map(lambda u, n=n: http_attempt(u, n, opts, args.header, expect), round_jobs):
                sink.add(rec)
            if n < args.repeat and args.interval > 0:
                time.sleep(args.interval)


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


class ImageRef(object):
    def __init__(self, registry: str, repository: str, reference: str):
        self.registry = registry
        self.repository = repository
        self.reference = reference

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
        blobs = [manifest["config"]] + list(manifest.get("layers", []))
        for blob in blobs:
            self.blob(blob["digest"], "config" if blob is manifest["config"] else "layer")
        return digest

    def manifest(self, reference: str) -> Tuple[Dict[str, Any], str, str]:
        body, headers = self.get("/v2/%s/manifests/%s" % (self.ref.repository, reference), "manifest", ["Accept: " + MANIFEST_TYPES])
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise ProbeFailure("digest_mismatch", "manifest %s arrived with digest %s" % (reference, digest))
        try:
            document = json.loads(body.decode("utf-8"))
        except ValueError:
            raise ProbeFailure("registry_error", "manifest %s is not JSON" % reference) from None
        return document, headers.get("content-type", document.get("mediaType", "")), digest

    def pick_platform(self, index: Dict[str, Any]) -> str:
        os_name, arch = self.platform.split("/", 1)
        for entry in index.get("manifests", []):
            plat = entry.get("platform", {})
            if plat.get("os") == os_name and plat.get("architecture") == arch:
                return str(entry["digest"])
        found = ", ".join("%s/%s" % (m.get("platform", {}).get("os"), m.get("platform", {}).get("architecture")) for m in index.get("manifests", []))
        raise ProbeFailure("registry_error", "no %s image in the index (has: %s)" % (self.platform, found))

    def blob(self, digest: str, what: str) -> None:
        hasher = hashlib.sha256()
        self.get("/v2/%s/blobs/%s" % (self.ref.repository, digest), what, [], sink=hasher.update)
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            raise ProbeFailure("digest_mismatch", "%s blob %s arrived with digest %s" % (what, digest, actual))

    def get(self, path: str, step: str, headers: List[str], sink: Optional[Callable[[bytes], None]] = None) -> Tuple[bytes, Dict[str, str]]:
        """GET with the bearer-token flow and redirects (blob hosts); every hop is recorded."""
        url = self.endpoint + path
        start = time.monotonic()
        for _hop in range(6):
            auth = ["Authorization: Bearer " + self.token] if self.token and same_host(url, self.endpoint) else []
            resp = exchange(url, self.opts, headers + auth, sink=sink)
            self.note_host(url)
            if resp.status == 401 and not auth and "www-authenticate" in resp.headers:
                self.fetch_token(resp.headers["www-authenticate"])
                continue
            if resp.status in (301, 302, 303, 307, 308) and "location" in resp.headers:
                url = urljoin(url, resp.headers["location"])
                continue
            if resp.status != 200:
                raise ProbeFailure("http_status", "HTTP %d for %s at %s" % (resp.status, step, urlsplit(url).netloc))
            self.bytes += resp.bytes
            self.steps.append({"step": step, "ms": ms(start), "bytes": resp.bytes, "host": urlsplit(url).netloc})
            return resp.body, resp.headers
        raise ProbeFailure("registry_error", "too many redirects or auth rounds for %s" % step)

    def fetch_token(self, challenge: str) -> None:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() != "bearer":
            raise ProbeFailure("registry_error", "registry wants %s auth; only anonymous bearer tokens are supported" % scheme)
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        if "realm" not in fields:
            raise ProbeFailure("registry_error", "bearer challenge without a realm")
        query = "service=%s&scope=%s" % (fields.get("service", ""), fields.get("scope") or "repository:%s:pull" % self.ref.repository)
        start = time.monotonic()
        resp = exchange(fields["realm"] + ("&" if "?" in fields["realm"] else "?") + query, self.opts)
        self.note_host(fields["realm"])
        if resp.status != 200:
            raise ProbeFailure("http_status", "HTTP %d from the token service %s" % (resp.status, urlsplit(fields["realm"]).netloc))
        try:
            document = json.loads(resp.body.decode("utf-8"))
            self.token = document.get("token") or document["access_token"]
        except (ValueError, KeyError):
            raise ProbeFailure("registry_error", "token service answered without a token") from None
        self.steps.append({"step": "token", "ms": ms(start), "bytes": resp.bytes, "host": urlsplit(fields["realm"]).netloc})

    def note_host(self, url: str) -> None:
        host = urlsplit(url).netloc
        if host not in self.hosts:
            self.hosts.append(host)


def same_host(a: str, b: str) -> bool:
    return urlsplit(a).netloc == urlsplit(b).netloc


def default_platform() -> str:
    machine = platform.machine().lower()
    return "linux/" + {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def pull_attempt(image: str, attempt: int, args: argparse.Namespace, opts: Options) -> Dict[str, Any]:
    rec = record("pull", image, attempt)
    try:
        ref = parse_image(image)
    except ValueError as exc:
        return failed(rec, ProbeFailure("registry_error", str(exc)))
    upstream = registry_endpoint(ref.registry, args.plain_http)
    endpoints = ([("mirror", args.mirror)] if args.mirror else []) + ([] if args.no_fallback and args.mirror else [("upstream", upstream)])
    start = time.monotonic()
    tried: List[Dict[str, Any]] = []
    for role, endpoint in endpoints:
        puller = Puller(endpoint, ref, opts, args.platform)
        try:
            digest = puller.pull()
        except ProbeFailure as failure:
            tried.append({"endpoint": redact_url(endpoint), "role": role, "error_class": failure.cls, "error": str(failure), "steps": puller.steps})
            last = failure
            continue
        rec.update(ok=True, digest=digest, served_by=role, endpoint=redact_url(endpoint), hosts=puller.hosts, steps=puller.steps, bytes=puller.bytes)
        rec["phases_ms"] = {"total": ms(start)}
        rec["fallbacks"] = tried
        return rec
    rec["phases_ms"] = {"total": ms(start)}
    rec["fallbacks"] = tried
    return failed(rec, last)


CRICTL_PATTERNS = [
    ("tls_handshake_timeout", r"TLS handshake timeout"),
    ("dns_error", r"no such host|server misbehaving"),
    ("connect_refused", r"connection refused"),
    ("connect_timeout", r"dial tcp .*(i/o timeout|connect: connection timed out)"),
    ("read_timeout", r"i/o timeout|context deadline exceeded|Client.Timeout"),
    ("tls_error", r"x509:|tls:"),
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


def route_mtu(family: int, ip: str, port: int) -> Optional[int]:
    """The MTU the kernel's route to `ip` has (no packet is sent: a connected UDP socket)."""
    try:
        probe = socket.socket(family, socket.SOCK_DGRAM)
        try:
            probe.connect((ip, port))
            if family == socket.AF_INET6:
                return int(probe.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU))
            return int(probe.getsockopt(socket.IPPROTO_IP, IP_MTU))
        finally:
            probe.close()
    except OSError:
        return None


def handshake_ok(host: str, port: int, opts: Options) -> Tuple[bool, Optional[str]]:
    """One TCP connect + TLS handshake with the options' MSS and hello size."""
    phases: Dict[str, float] = {}
    try:
        family, ip = resolve(host, port, opts, phases)
        sock = connect(family, ip, port, opts, phases)
        try:
            handshake(sock, host, opts, phases).close()
        finally:
            sock.close()
        return True, None
    except ProbeFailure as failure:
        return False, failure.cls


class Sweep(object):
    """Binary search for the largest MSS at which small *and* large first flights get through."""

    def __init__(self, host: str, port: int, args: argparse.Namespace, log: Callable[[str], None]):
        self.host, self.port, self.args, self.log = host, port, args, log
        self.deadline = time.monotonic() + args.budget
        self.trials: List[Dict[str, Any]] = []

    def works(self, mss: Optional[int]) -> Optional[bool]:
        """True when every repeat of both hello sizes completes; None when the time budget ran out."""
        for big in (False, True):
            for _ in range(self.args.repeat):
                if time.monotonic() > self.deadline:
                    return None
                opts = Options(self.args.timeout, self.args.resolve, self.args.ca_file, big_hello=big, mss=mss)
                ok, cls = handshake_ok(self.host, self.port, opts)
                self.trials.append({"mss": mss, "big_hello": big, "ok": ok, "error_class": cls, "timestamp": utc_now()})
                self.log("mss %s %s hello: %s" % (mss or "default", "large" if big else "small", "ok" if ok else cls))
                if not ok:
                    return False
        return True

    def run(self) -> Dict[str, Any]:
        phases: Dict[str, float] = {}
        family, ip = resolve(self.host, self.port, Options(self.args.timeout, self.args.resolve), phases)
        overhead = 60 if family == socket.AF_INET6 else 40
        mtu = route_mtu(family, ip, self.port) or 1500
        high = min(self.args.max_mss or mtu - overhead, mtu - overhead)
        result: Dict[str, Any] = {"target": "%s:%d" % (self.host, self.port), "remote_ip": ip, "route_mtu": mtu, "ip_overhead": overhead}
        result["default_mss_works"] = self.works(None)
        low_ok = self.works(MIN_MSS)
        best: Optional[int] = None
        if low_ok:
            best, lo, hi = MIN_MSS, MIN_MSS + 1, high
            while lo <= hi:
                mid = (lo + hi) // 2
                passed = self.works(mid)
                if passed is None:
                    result["incomplete"] = "time budget of %.0fs ran out; the working MSS is at least %d" % (self.args.budget, best)
                    break
                if passed:
                    best, lo = mid, mid + 1
                else:
                    hi = mid - 1
        result.update(verdict(result["default_mss_works"], low_ok, best, overhead, high))
        result["trials"] = self.trials
        return result


def verdict(default_ok: Optional[bool], low_ok: Optional[bool], best: Optional[int], overhead: int, high: int) -> Dict[str, Any]:
    out: Dict[str, Any] = {"working_mss": best, "path_mtu": best + overhead if best else None}
    if not low_ok:
        out.update(black_hole=False, verdict="unreachable", recommended_clamp=None,
                   explanation="handshakes fail even at MSS %d: not an MTU problem (check DNS, routing, firewall, the server)" % MIN_MSS)
    elif default_ok and best == high:
        out.update(black_hole=False, verdict="clean", recommended_clamp=None,
                   explanation="full-size segments get through in both directions; no clamp needed")
    elif default_ok:
        out.update(black_hole=False, verdict="clean-default", recommended_clamp=None,
                   explanation="the default MSS works although larger probes above %s failed" % best)
    else:
        out.update(black_hole=True, verdict="black-hole", recommended_clamp=best,
                   explanation="handshakes stall at the default MSS but complete at MSS %s: a PMTU black hole; "
                   "clamp TCP MSS to %s (path MTU %s)" % (best, best, (best or 0) + overhead))
    return out


def tracepath_evidence(host: str, timeout: float) -> Optional[str]:
    """tracepath's view beside the verdict. It learns the path MTU from ICMP, so across a black
    hole it reports the wrong value or no reply: that contrast is the evidence."""
    tool = shutil.which("tracepath")
    if not tool:
        return None
    argv = [tool, "-n", "-m", "8", host]
    if shutil.which("stdbuf"):
        argv = ["stdbuf", "-oL"] + argv  # line-buffered, so a stopped run still shows its hops
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return (done.stdout + done.stderr).strip()
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return partial.strip() + "\n(tracepath stopped after %.0fs)" % timeout


def run_sweep(args: argparse.Namespace, sink: "Collector") -> None:
    host, _, port = args.target.rpartition(":") if re.search(r":\d+$", args.target) else (args.target, "", "443")
    host = host.strip("[]")
    result = Sweep(host, int(port), args, sink.progress).run()
    if not args.no_tracepath:
        result["tracepath"] = tracepath_evidence(host, args.tracepath_timeout)
    sink.sweep = result
    sink.add(sweep_record(result))


def sweep_record(result: Dict[str, Any]) -> Dict[str, Any]:
    """The sweep as one attempt record: ok when the default MSS works, classified otherwise."""
    rec = record("mss-sweep", result["target"], 1, remote_ip=result["remote_ip"], remote_port=int(result["target"].rsplit(":", 1)[1]))
    if result["verdict"] in ("clean", "clean-default"):
        rec["ok"] = True
        return rec
    classes = [t["error_class"] for t in result["trials"] if t["error_class"]]
    return failed(rec, ProbeFailure(classes[-1] if classes else "connect_error", result["explanation"]))


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


def document(command: str, argv: List[str], collector: Collector, interrupted: bool) -> Dict[str, Any]:
    doc: Dict[str, Any] = {
        "schema": SCHEMA,
        "agent_version": AGENT_VERSION,
        "command": command,
        "argv": redact_argv(argv),
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
        lines.append("    " + sweep["explanation"])
        if sweep.get("incomplete"):
            lines.append("    incomplete: " + sweep["incomplete"])
    if doc["interrupted"]:
        lines.append("(interrupted: partial results)")
    return "\n".join(lines)


# ---------------------------------------------------------------- command line


def options_from(args: argparse.Namespace) -> Options:
    return Options(args.timeout, args.resolve, args.ca_file, big_hello=getattr(args, "big_hello", False))


def parse_resolve(text: str) -> Tuple[Tuple[str, int], str]:
    host, port, address = text.rsplit(":", 2) if text.count(":") == 2 else _split_resolve_v6(text)
    return (host, int(port)), address.strip("[]")


def _split_resolve_v6(text: str) -> Tuple[str, str, str]:
    host, port, address = text.split(":", 2)
    return host, port, address


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="agent.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="failure classes:\n" + "\n".join("  %-22s %s" % kv for kv in FAILURE_CLASSES.items()))
    sub = p.add_subparsers(dest="command")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--timeout", type=float, default=10.0, help="bound on every phase, seconds (default 10)")
        sp.add_argument("--resolve", action="append", default=[], metavar="HOST:PORT:ADDR", help="pin a name to an address, as curl's")
        sp.add_argument("--ca-file", help="PEM bundle of CAs to trust instead of the system store")
        sp.add_argument("--json", action="store_true", help="print one netstab.probe/v1 JSON document")
        sp.add_argument("--quiet", action="store_true", help="no progress on stderr")

    h = sub.add_parser("http", help="timed HTTP(S) requests per phase")
    h.add_argument("urls", nargs="+", metavar="URL")
    h.add_argument("--repeat", type=int, default=1)
    h.add_argument("--interval", type=float, default=0.0, help="seconds between rounds")
    h.add_argument("--concurrency", type=int, default=1)
    h.add_argument("--header", "-H", action="append", default=[], help="extra request header; sensitive values are redacted in output")
    h.add_argument("--expect", default="200-399,401", help="statuses that count as success (default 200-399,401)")
    h.add_argument("--big-hello", action="store_true", help="a ClientHello larger than one segment, like containerd's")
    common(h)

    pl = sub.add_parser("pull", help="registry-API image pull, digests verified")
    pl.add_argument("images", nargs="+", metavar="IMAGE")
    pl.add_argument("--repeat", type=int, default=1)
    pl.add_argument("--mirror", help="mirror endpoint URL tried first; the upstream is the fallback")
    pl.add_argument("--no-fallback", action="store_true", help="with --mirror: do not fall back to the upstream (warm-up, mirror checks)")
    pl.add_argument("--runtime", choices=("api", "crictl"), default="api", help="crictl: pull with the node's runtime instead")
    pl.add_argument("--platform", default=default_platform(), help="os/arch picked from an index (default: this machine)")
    pl.add_argument("--plain-http", action="append", default=[], metavar="REGISTRY", help="reach this registry over plain HTTP")
    common(pl)

    s = sub.add_parser("mss-sweep", help="find the largest working MSS: PMTU black-hole detection")
    s.add_argument("target", metavar="HOST[:PORT]")
    s.add_argument("--repeat", type=int, default=2, help="handshakes per step and hello size (default 2)")
    s.add_argument("--budget", type=float, default=90.0, help="bound on the whole sweep, seconds (default 90)")
    s.add_argument("--max-mss", type=int, help="highest MSS to try (default: route MTU - IP/TCP headers)")
    s.add_argument("--no-tracepath", action="store_true", help="skip tracepath evidence")
    s.add_argument("--tracepath-timeout", type=float, default=10.0, help="bound on tracepath, seconds (default 10)")
    common(s)
    s.set_defaults(timeout=3.0)

    f = sub.add_parser("facts", help="host network facts as JSON")
    f.add_argument("--json", action="store_true", default=True)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = parser()
    try:
        args = p.parse_args(argv)
        if args.command is None:
            p.print_help(sys.stderr)
            return 2
        if args.command == "facts":
            print(json.dumps({"schema": SCHEMA, "command": "facts", "host": facts()}, indent=2))
            return 0
        args.resolve = dict(parse_resolve(r) for r in args.resolve)
        if getattr(args, "repeat", 1) < 1 or getattr(args, "concurrency", 1) < 1 or args.timeout <= 0:
            p.error("--repeat, --concurrency and --timeout must be positive")
    except (ValueError, IndexError) as exc:
        sys.stderr.write("agent.py: bad argument: %s\n" % exc)
        return 2
    collector = Collector(args.quiet)
    runner = {"http": run_http, "pull": run_pull, "mss-sweep": run_sweep}[args.command]
    interrupted = False
    try:
        runner(args, collector)
    except KeyboardInterrupt:
        interrupted = True
    except ProbeFailure as failure:
        collector.add(failed(record(args.command, getattr(args, "target", "?"), 1), failure))
    doc = document(args.command, argv, collector, interrupted)
    print(json.dumps(doc, indent=2) if args.json else table(doc))
    if interrupted:
        return 130
    return 0 if collector.records and all(r["ok"] for r in collector.records) else 1


if __name__ == "__main__":
    sys.exit(main())
