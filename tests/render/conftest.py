import copy

import pytest

from components.config import parse_config
from components.stack import read_stack_file, stack_file


@pytest.fixture
def homelab_raw():
    raw, _ = read_stack_file(stack_file("homelab"))
    return copy.deepcopy(raw)


@pytest.fixture
def homelab(homelab_raw):
    return parse_config(homelab_raw)
