"""The program refuses to declare anything when config or secrets are wrong, and says how to fix it."""

from __future__ import annotations

import pytest

from tests.program import harness
from tests.program.harness import DUMMY_SECRETS, run_program

HEADER = "netstab: the stack config has problems:"


def refusal(raw, **kwargs) -> list[str]:
    """The problem lines the program stops with."""
    with pytest.raises(SystemExit) as caught:
        run_program(raw, **kwargs)
    header, *lines = str(caught.value).split("\n")
    assert header == HEADER
    return [line.removeprefix("  ") for line in lines]


def test_a_missing_secret_names_the_command_that_sets_it(homelab_raw):
    secrets = {k: v for k, v in DUMMY_SECRETS.items() if k != "k3sToken"}
    assert refusal(homelab_raw, secrets=secrets) == [
        "netstab:k3sToken: missing secret; set it with: pulumi config set --secret netstab:k3sToken <value>"]


def test_a_secret_set_in_plain_text_is_refused(homelab_raw):
    assert refusal(homelab_raw, plain_keys=("sshPrivateKey",)) == [
        "netstab:sshPrivateKey: is stored in plain text; set it with: pulumi config set --secret netstab:sshPrivateKey <value>"]


def test_a_typo_in_a_top_level_key_is_reported(homelab_raw):
    homelab_raw["netwrok"] = {"mtu": 1400}
    assert refusal(homelab_raw) == [
        "netwrok: unknown key; expected one of: proxmox, network, image, ssh, k3s, nodes, gateway, mirror, secrets, validation, "
        "proxmoxApiToken, sshPrivateKey, k3sToken, mirrorCredentials, dopplerToken"]


def test_nothing_is_declared_when_config_is_invalid(homelab_raw):
    homelab_raw["network"]["mtu"] = 20000
    recording = harness.Recording()
    assert refusal(homelab_raw, recording=recording) == ["network.mtu: 20000 is not an integer in 576..9000"]
    assert recording.resources == []


def test_the_doppler_token_is_needed_only_when_secrets_are_enabled(homelab_raw):
    without_token = {k: v for k, v in DUMMY_SECRETS.items() if k != "dopplerToken"}
    assert refusal(homelab_raw, secrets=without_token) == [
        "netstab:dopplerToken: missing secret; set it with: pulumi config set --secret netstab:dopplerToken <value>"]
    homelab_raw["secrets"]["enabled"] = "false"  # text, as the engine may hand it over: read as validation reads it
    recording = run_program(homelab_raw, secrets=without_token)
    assert recording.of_type("netstab:secrets:SecretsLayer") == []
