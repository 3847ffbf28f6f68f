"""Fixtures every ring shares: the homelab stack, raw and validated."""

import copy

import pytest

from components.config import ConfigError, parse_config
from components.stack import read_stack_file, stack_file


def stack_raw(name: str) -> dict:
    """A shipped stack's netstab: keys, a fresh copy (secrets come from the harness)."""
    raw, _ = read_stack_file(stack_file(name))
    return copy.deepcopy(raw)


@pytest.fixture
def homelab_raw():
    """The homelab stack's netstab: keys, a fresh copy per test."""
    return stack_raw("homelab")


@pytest.fixture
def homelab(homelab_raw):
    """The homelab stack, validated (program tests override it with a recorded run of the program)."""
    return parse_config(homelab_raw)

def problems_of(raw) -> list[str]:
    """What config validation refuses `raw` with (it must refuse it)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


# Resource type tokens as the SDKs register them (asserted on by the program and lifecycle rings).
VM = "proxmoxve:index/vmLegacy:VmLegacy"
SNIPPET = "proxmoxve:index/fileLegacy:FileLegacy"
DOWNLOAD = "proxmoxve:download/file:File"
COMMAND = "command:remote:Command"
DYNAMIC = "pulumi-python:dynamic:Resource"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
SECRET_STORE = "kubernetes:external-secrets.io/v1:ClusterSecretStore"
