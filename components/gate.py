"""What every gate's dynamic provider shares: it judges on create and on every update, owns
nothing (delete does nothing), and fails with a message that is the whole diagnosis.

The dynamic-provider host reports an error with traceback.format_exc(), which honours
sys.tracebacklimit: at 0 the engine shows the diagnosis alone, not a stack.
"""

from __future__ import annotations

import sys
from typing import Any

from pulumi.dynamic import ConfigureRequest, CreateResult, ResourceProvider, UpdateResult


class GateProvider(ResourceProvider):
    id_prefix = "gate"

    def configure(self, req: ConfigureRequest) -> None:
        sys.tracebacklimit = 0

    def fingerprint(self, props: dict[str, Any]) -> str:
        """What the gate's result depends on; part of its id."""
        raise NotImplementedError

    def judge(self, props: dict[str, Any]) -> dict[str, Any]:
        """The gate's outputs; raises GateError (kubeapi.py) with the diagnosis when it fails."""
        raise NotImplementedError

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{self.id_prefix}-{self.fingerprint(props)}", outs=self.judge(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self.judge(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None
