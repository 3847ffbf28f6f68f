"""The `validation` section: the post-up network gate's probes, budget, criteria and mode."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field

from components.config.base import Problems, Section, default, rule
from components.config.fields import Bool, Check, between, hostname, https_url, one_of, plain, string_list
from components.config.mirror import IMAGE_REF
from probes import plan
from probes.kinds import KINDS

MODES = ("enforce", "warn")
HOSTNAME_SCHEMA = hostname("").schema
RUNS = ("always", "on-change")
PROXMOX = "proxmox"  # the vantage point that is the Proxmox host, not a node


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError("")
    return float(value)


Fraction = Annotated[float, Check("a fraction from 0 to 1, such as 0.95", _fraction, {"type": "number", "minimum": 0, "maximum": 1})]


def _images(value: Any) -> tuple[str, ...]:
    refs = string_list(value)
    if not refs:
        raise ValueError("at least one image")
    bad = [r for r in refs if not IMAGE_REF.fullmatch(r) or len(r) > 512]
    if bad:
        raise ValueError(f"references without an explicit registry and tag: {', '.join(map(plain, bad))}")
    return refs


def _urls(value: Any) -> tuple[str, ...]:
    urls = tuple(HTTPS.convert(url) for url in string_list(value))
    if not urls:
        raise ValueError("at least one endpoint")
    for url in urls:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (raises on a port out of range)
        except ValueError:
            raise ValueError(f"{url} has no valid host and port") from None
        if not parts.hostname or ":" in parts.hostname:
            raise ValueError(f"{url}: name the host (IPv6 literals are not supported yet)")
    return urls


HTTPS = https_url("an https:// URL")


def _kinds(value: Any) -> tuple[str, ...]:
    kinds = string_list(value) if value != [] else ()
    problems = [k for k in kinds if k not in KINDS or k == "healthy"]
    if problems:
        raise ValueError(f"{', '.join(map(plain, problems))} not a problem kind (one of {', '.join(k for k in KINDS if k != 'healthy')})")
    return kinds


def _names(value: Any) -> tuple[str, ...]:
    check = hostname("")
    return tuple(check.convert(name) for name in string_list(value))


class CriteriaConfig(Section):
    """The plan's success criteria, as numbers: the judge's `probes.criteria.Criteria`, field for field."""

    max_handshake_timeouts: Annotated[int, between(0, 100000)] = 0
    """TLS handshake timeouts allowed across all http probes from the VM nodes."""
    min_pull_success: Fraction = 0.95
    """Share of pulls that must succeed on each node."""
    every_image_per_node: Bool = True
    """Every test image must be pulled at least once on every node."""
    min_doppler_success: Fraction = 0.95
    """Share of Doppler API requests from each node that must succeed."""
    max_doppler_failure_run: Annotated[int, between(0, 1000)] = 3
    """Longest run of consecutive failed Doppler requests allowed."""
    max_tls_p95_ms: Annotated[int, between(1, 600000)] | None = None
    """p95 bound on the TLS phase per node and target, milliseconds; off when absent."""
    max_doppler_failure_minutes: Annotated[int, between(1, 10080)] = 10
    """Over time (monitoring's history and alerts): longest run of Doppler failures allowed, minutes."""
    min_handshake_success_per_day: Fraction = 0.99
    """Over time (monitoring's history): share of TLS handshakes from each node that must complete, every day."""
    tolerate: Annotated[tuple[str, ...], Check("a list of diagnosis kinds", _kinds,
                                               {"type": "array", "items": {"enum": [k for k in KINDS if k != "healthy"]}})] = ()
    """Diagnosis kinds that warn instead of failing (their thresholds above still apply)."""

    def judge_criteria(self) -> dict[str, Any]:
        """The criteria as the judge reads them (probes.criteria.Criteria.from_dict)."""
        return {**self.model_dump(), "tolerate": list(self.tolerate), "doppler_host": plan.DOPPLER_HOST}


class ValidationConfig(Section):
    """The post-up network gate: probes from the Proxmox host and the nodes, judged against the plan's criteria."""

    enabled: Bool = True
    """Run the gate after the cluster is up."""
    mode: Annotated[str, one_of(MODES)] = "enforce"
    """enforce: a failing verdict fails `pulumi up`; warn: it becomes a warning."""
    run: Annotated[str, one_of(RUNS)] = "always"
    """always: probe on every `pulumi up` (a check); on-change: only when the network, the clamp or these settings change."""
    quick: Bool = False
    """Fewer repeats (3 per endpoint) for a fast check."""
    repeats: Annotated[int, between(1, 200)] = 20
    """Requests per endpoint and hello size (the plan says "repeated")."""
    budget_s: Annotated[int, between(30, 3600)] = Field(120, alias="budgetSeconds")
    """Time budget of each vantage point's probe run, seconds."""
    vantage_points: Annotated[tuple[str, ...], Check("a list of node names or proxmox", _names, {"type": "array", "items": HOSTNAME_SCHEMA})] = ()
    """Where to probe from: `proxmox` (the Proxmox host) and node names; default: the Proxmox host, the server and the first agent."""
    endpoints: Annotated[tuple[str, ...], Check("a list of https:// URLs", _urls, {"type": "array", "items": HTTPS.schema})] = plan.ENDPOINTS
    """Endpoints probed with repeated HTTPS requests (the plan's six)."""
    images: Annotated[tuple[str, ...], Check("a list of image references (registry/repo:tag)", _images,
                                              {"type": "array", "items": {"type": "string", "pattern": IMAGE_REF.pattern, "maxLength": 512}})] = plan.TEST_IMAGES
    """Images pulled through the mirror (when enabled) and directly (the plan's test images)."""
    criteria: CriteriaConfig = default({})
    """The success criteria the verdict is judged against."""

    @property
    def effective_repeats(self) -> int:
        return 3 if self.quick else self.repeats

    @rule("vantage_points")
    def _no_duplicate_vantage_points(self) -> Problems:
        seen: set[str] = set()
        for i, name in enumerate(self.vantage_points):
            if name in seen:
                yield ("vantagePoints", i), f"{name} is listed twice"
            seen.add(name)
