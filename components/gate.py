"""What every gate's dynamic provider shares: it judges on create and on every update, owns
nothing (delete does nothing), and fails with a message that is the whole diagnosis.

The dynamic-provider host reports an error with traceback.format_exc(), which honours
sys.tracebacklimit: at 0 the engine shows the diagnosis alone, not a stack.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from pulumi.dynamic import ConfigureRequest, CreateResult, DiffResult, ResourceProvider, UpdateResult

from components.sdkvalues import UNKNOWN, unwrap


def cluster_of(props: dict[str, Any]) -> str:
    """Which cluster a gate reads (a hash of its kubeconfig), for its fingerprint."""
    return hashlib.sha256(str(unwrap(props.get("kubeconfig"))).encode()).hexdigest()


# In the report folder: a nonce written by every failed gate run. With `validation.run: on-change`
# the run id covers it, so the `up` after a failure probes again instead of judging the same
# output (components/validation.py run_id); a pass leaves it, so the up after that is quiet again.
FAILURE_MARK = ".last-failure"


def record_failure(report_dir: str | Path) -> None:
    folder = Path(report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FAILURE_MARK).write_text(uuid.uuid4().hex + "\n")


def last_failure(report_dir: str | Path) -> str:
    """The nonce of the last failed gate run judged with this report folder, or ""."""
    try:
        return (Path(report_dir) / FAILURE_MARK).read_text().strip()
    except OSError:
        return ""


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class GateProvider(ResourceProvider):
    """A gate judges again whenever its fingerprint changes or an input it reads is not known yet
    (a preview), and never replaces: every run judges in place (update). The fingerprint of the
    last run is kept in the outputs as `fingerprint`."""

    id_prefix = "gate"
    reads = ("kubeconfig",)  # inputs whose unknown value (preview) means the gate runs again

    def configure(self, req: ConfigureRequest) -> None:
        sys.tracebacklimit = 0

    def fingerprint(self, props: dict[str, Any]) -> str:
        """What the gate's result depends on; part of its id."""
        raise NotImplementedError

    def judge(self, props: dict[str, Any]) -> dict[str, Any]:
        """The gate's outputs; raises GateError (kubeapi.py) with the diagnosis when it fails."""
        raise NotImplementedError

    def _unknown(self, news: dict[str, Any]) -> bool:
        values = [unwrap(news.get(name)) for name in self.reads]
        return any(v == UNKNOWN or (isinstance(v, dict) and UNKNOWN in v.values()) for v in values)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changes = self._unknown(news) or olds.get("fingerprint") != self.fingerprint(news)
        return DiffResult(changes=changes, replaces=[], stables=[], delete_before_replace=False)

    def _outs(self, props: dict[str, Any]) -> dict[str, Any]:
        return {**self.judge(props), "fingerprint": self.fingerprint(props)}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{self.id_prefix}-{self.fingerprint(props)}", outs=self._outs(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._outs(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None
