"""Which hosts to mss-sweep: every host whose TLS handshake stalled in the probes, a pull's blob host
behind a registry redirect included, at most `limit` of them, in the order they were met.

One list for the post-up gate's probe run (this file is its text: it runs on the node as
`python3 - LIMIT FILE... < stalls.py` and prints `host:port` lines) and for the lab (imported).
Standard library only, Python 3.8 as the agent.

An http record names its host in its URL. A pull names the registry in its target, but a stall
can be at any host the pull met: the registry, its token service, or the blob host a redirect
sent it to. The agent names that host in the failure (`TLS handshake with HOST did not finish`,
probes/agent.py handshake_failure), in the record and in each endpoint's entry of `fallbacks`.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Iterator, List, Tuple
from urllib.parse import urlsplit

STALL = "tls_handshake_timeout"
HANDSHAKE_HOST = re.compile(r"^TLS handshake with (\S+) did not finish")
# a name or an address, nothing an argument parser or a shell could take for more
HOST = re.compile(r"^[A-Za-z0-9_.:][A-Za-z0-9_.:-]*$")


def _target(host: str, port: int) -> str:
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def _pull_stalls(rec: Any) -> Iterator[Tuple[str, int, Any]]:
    """(host, port, address or None) of every stalled handshake a pull record names: each
    endpoint's try, in order (`fallbacks`), and its own failure (the last try's, whose address
    the record keeps)."""
    tries = [t for t in rec.get("fallbacks") or [] if isinstance(t, dict)] + [rec]
    for t in tries:
        match = HANDSHAKE_HOST.match(str(t.get("error", ""))) if t.get("error_class") == STALL else None
        if match:
            last = t.get("error") == rec.get("error")
            yield match.group(1), _port(rec, t, match.group(1), last), rec.get("remote_ip") if last else None


def _port(rec: Any, tried: Any, host: str, last: bool) -> int:
    """The record's remote port is its last failure's; an endpoint's host is at the endpoint's port."""
    port = rec.get("remote_port") if last else None
    if not isinstance(port, int) and isinstance(tried.get("endpoint"), str):
        try:
            endpoint = urlsplit(tried["endpoint"])
            port = endpoint.port if endpoint.hostname == host else None
        except ValueError:
            port = None
    return port if isinstance(port, int) and port > 0 else 443


def _http_stalls(rec: Any) -> List[Tuple[str, int, Any]]:
    if rec.get("error_class") != STALL or not isinstance(rec.get("target"), str):
        return []
    try:
        url = urlsplit(rec["target"])
        return [(url.hostname, url.port or 443, rec.get("remote_ip"))] if url.hostname else []
    except ValueError:
        return []


def stalled_targets(documents: List[Any], limit: int) -> List[str]:
    """`host:port` of each host whose handshake stalled, in the documents' order, at most `limit`.
    A host at an address already chosen (with that port) is left out: a sweep measures the path to
    an address, and names that share one (a registry's, or an API's) share its path."""
    found: List[str] = []
    addresses = set()
    for doc in documents:
        records = doc.get("records") if isinstance(doc, dict) else None
        for rec in records if isinstance(records, list) else []:
            if not isinstance(rec, dict):
                continue
            stalls = list(_pull_stalls(rec)) if rec.get("kind") == "pull" else _http_stalls(rec)
            for host, port, address in stalls:
                if not HOST.match(host or ""):
                    continue
                target = _target(host, port)
                where = (address, port) if isinstance(address, str) and address else None
                if target in found or where in addresses or len(found) >= limit:
                    continue
                found.append(target)
                if where:
                    addresses.add(where)
    return found


def main(argv: List[str]) -> None:
    documents: List[Any] = []
    for path in argv[1:]:
        try:
            with open(path) as handle:
                documents.append(json.load(handle))
        except (OSError, ValueError):
            continue  # a run the budget stopped, or one that never ran
    for target in stalled_targets(documents, int(argv[0])):
        print(target)


if __name__ == "__main__":
    main(sys.argv[1:])
