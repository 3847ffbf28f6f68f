"""The guest ring: one VM booted per session from the rendered seed; every test reads or drives it.

Run by `make vm-test` (not by `make test`: pyproject's addopts ignore tests/guest unless it is
named). A ring that cannot start (no root, a missing tool, no space, a boot that never reaches
cloud-init) stops the session with one line saying which, and a non-zero exit; the VM, its tap and
its namespaces go with the session, on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from lab.guest_image import RingError
from lab.guest_vm import booted, prepare

TIMINGS = Path(os.environ.get("NETSTAB_GUEST_TIMINGS", "lab-report/guest/timings.json"))


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_sessionstart(session: pytest.Session) -> None:
    # pytest tears fixtures down on KeyboardInterrupt: SIGTERM and SIGHUP take the same way out
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)


@pytest.fixture(scope="session")
def guest(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.exit("guest ring: it boots a VM on a tap in lab namespaces: run `make vm-test` as root", returncode=1)
    try:
        image = prepare()
        with booted(image, tmp_path_factory.mktemp("guest")) as vm:
            TIMINGS.parent.mkdir(parents=True, exist_ok=True)
            TIMINGS.write_text(json.dumps({"image_build_s": image.built_s, "boot_to_cloud_init_done_s": round(vm.boot_s, 1),
                                           "accelerator": vm.accelerator, "fallbacks": vm.fallbacks, "cloud_init": image.manifest["versions"]["cloud-init"]}))
            print(f"\nguest ring: {vm.accelerator}, cloud-init done {vm.boot_s:.0f}s after qemu started")
            yield vm
    except RingError as failed:
        pytest.exit(f"guest ring: {failed}", returncode=1)
