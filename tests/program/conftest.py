import copy

import pytest

from components.stack import read_stack_file, stack_file


@pytest.fixture
def homelab_raw():
    """The homelab stack's netstab: keys, a fresh copy per test (secrets come from the harness)."""
    raw, _ = read_stack_file(stack_file("homelab"))
    return copy.deepcopy(raw)
