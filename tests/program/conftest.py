"""The program ring's shared fixture: the homelab stack's program run under mocks."""

import pytest

from tests.program.harness import Recording, run_program


@pytest.fixture
def homelab_run(homelab_raw) -> Recording:
    """What the program registers for the homelab stack (a fresh run per test)."""
    return run_program(homelab_raw)
