"""The program refuses to declare anything when config or secrets are wrong, and says how to fix it."""

from __future__ import annotations

import pytest

from tests.program.harness import DUMMY_SECRETS, run_program


def test_a_missing_secret_names_the_command_that_sets_it(homelab_raw):
    secrets = {k: v for k, v in DUMMY_SECRETS.items() if k != "k3sToken"}
    with pytest.raises(SystemExit) as caught:
        run_program(homelab_raw, secrets=secrets)
    assert "netstab:k3sToken: missing secret; set it with: pulumi config set --secret netstab:k3sToken" in str(caught.value)


def test_a_secret_set_in_plain_text_is_refused(homelab_raw):
    with pytest.raises(SystemExit) as caught:
        run_program(homelab_raw, plain_keys=("sshPrivateKey",))
    assert "netstab:sshPrivateKey: is stored in plain text" in str(caught.value)


def test_a_typo_in_a_top_level_key_is_reported(homelab_raw):
    homelab_raw["netwrok"] = {"mtu": 1400}
    with pytest.raises(SystemExit) as caught:
        run_program(homelab_raw)
    assert "netwrok: unknown key" in str(caught.value)


def test_nothing_is_declared_when_config_is_invalid(homelab_raw):
    from tests.program import harness

    homelab_raw["network"]["mtu"] = 20000
    recording = harness.Recording()
    with pytest.raises(SystemExit, match="network.mtu: 20000"):
        run_program(homelab_raw, recording=recording)
    assert recording.resources == []
