"""The program refuses to declare anything when config or secrets are wrong, and says how to fix it."""

from __future__ import annotations

import json

import pytest

from tests.conftest import VM
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
        "netstab:k3sToken: missing secret; set it with: pulumi config set --secret netstab:k3sToken (it prompts for the value; never put it on the command line)"]


def test_a_secret_set_in_plain_text_is_refused(homelab_raw):
    assert refusal(homelab_raw, plain_keys=("sshPrivateKey",)) == [
        "netstab:sshPrivateKey: is stored in plain text; set it with: pulumi config set --secret netstab:sshPrivateKey < ~/.ssh/id_ed25519 (read from the file, never on the command line)"]


def test_a_typo_in_a_top_level_key_is_reported(homelab_raw):
    homelab_raw["netwrok"] = {"mtu": 1400}
    assert refusal(homelab_raw) == [
        "netwrok: unknown key; expected one of: proxmox, network, image, ssh, k3s, nodes, gateway, mirror, secrets, validation, monitoring, "
        "proxmoxApiToken, sshPrivateKey, k3sToken, mirrorCredentials, dopplerToken"]


def test_nothing_is_declared_when_config_is_invalid(homelab_raw):
    homelab_raw["network"]["mtu"] = 20000
    recording = harness.Recording()
    assert refusal(homelab_raw, recording=recording) == ["network.mtu: 20000 is not an integer in 576..9000"]
    assert recording.resources == []


def test_the_doppler_token_is_needed_only_when_secrets_are_enabled(homelab_raw):
    without_token = {k: v for k, v in DUMMY_SECRETS.items() if k != "dopplerToken"}
    assert refusal(homelab_raw, secrets=without_token) == [
        "netstab:dopplerToken: missing secret; set it with: pulumi config set --secret netstab:dopplerToken (it prompts for the value; never put it on the command line)"]
    homelab_raw["secrets"]["enabled"] = False  # as `pulumi config set --path netstab:secrets.enabled false` stores it: a bool
    recording = run_program(homelab_raw, secrets=without_token)
    assert recording.of_type("netstab:secrets:SecretsLayer") == []


def test_a_section_given_as_plain_text_is_named(homelab_raw):
    homelab_raw["network"] = "10.27.27.0/24"  # `pulumi config set netstab:network 10.27.27.0/24`: not an object
    assert refusal(homelab_raw) == ["network: expected a mapping, got '10.27.27.0/24'"]


def test_a_misspelt_namespace_is_named(homelab_raw):
    from pulumi.runtime.config import set_config

    from components.program import main

    k3s = homelab_raw.pop("k3s")

    def program() -> None:
        set_config("netsatb:k3s", json.dumps(k3s))  # `pulumi config set --path netsatb:k3s.version ...`
        main()

    assert refusal(homelab_raw, program=program) == [
        "netsatb:k3s: the namespace 'netsatb' looks like a misspelling of 'netstab'; rename the key netstab:k3s",
    ]  # and no "k3s: missing required key": the section is checked where it was meant to be


def test_a_misspelt_namespace_is_checked_where_it_was_meant_to_be(homelab_raw):
    from pulumi.runtime.config import set_config

    from components.program import main

    k3s = {**homelab_raw.pop("k3s"), "versoin": "v1"}

    def program() -> None:
        set_config("netsatb:k3s", json.dumps(k3s))
        main()

    assert refusal(homelab_raw, program=program) == [
        "netsatb:k3s: the namespace 'netsatb' looks like a misspelling of 'netstab'; rename the key netstab:k3s",
        "k3s.versoin: unknown key; expected one of: version, installUrl, readyTimeoutSeconds, vip, vipInterface",
    ]


@pytest.mark.parametrize("key", ["k3sToken", "proxmoxApiToken", "dopplerToken"])
def test_an_empty_secret_is_refused(homelab_raw, key):
    assert refusal(homelab_raw, secrets={**DUMMY_SECRETS, key: " "}) == [
        f"netstab:{key}: is empty; set it with: pulumi config set --secret netstab:{key} (it prompts for the value; never put it on the command line)"]


CANARY = "hunter2-canary-9d1e"
CREDENTIALS_SHAPE = 'expected {"<registry>": {"username": "...", "password": "..."}}'
ENTRY_SHAPE = "needs exactly a username and a password, each non-empty text"
BROKEN_CREDENTIALS = [
    pytest.param('{"docker.io": {"username": "me", "password": "' + CANARY + '"}',
                 f"is not valid JSON (line 1, column 68: Expecting ',' delimiter); {CREDENTIALS_SHAPE}", id="not_json"),
    pytest.param(f'["{CANARY}"]', f"is not a JSON object; {CREDENTIALS_SHAPE}", id="not_an_object"),
    pytest.param(f'{{"docker.io": "{CANARY}"}}', f"entry 1 {ENTRY_SHAPE}; {CREDENTIALS_SHAPE}", id="entry_not_an_object"),
    pytest.param(f'{{"ghcr.io": {{"username": "me", "password": "x"}}, "docker.io": {{"username": "{CANARY}"}}}}',
                 f"entry 2 {ENTRY_SHAPE}; {CREDENTIALS_SHAPE}", id="entry_without_password"),
    pytest.param(f'{{"docker.io": {{"username": "me", "password": "{CANARY}", "token": "x"}}}}',
                 f"entry 1 {ENTRY_SHAPE}; {CREDENTIALS_SHAPE}", id="entry_with_another_key"),
    pytest.param('{"docker.io": {"username": "me", "password": 12345}}', f"entry 1 {ENTRY_SHAPE}; {CREDENTIALS_SHAPE}",
                 id="password_not_text"),
    pytest.param(f'{{"docker.io": {{"username": "", "password": "{CANARY}"}}}}', f"entry 1 {ENTRY_SHAPE}; {CREDENTIALS_SHAPE}",
                 id="empty_username"),
]


@pytest.mark.parametrize("value,expected", BROKEN_CREDENTIALS)
def test_malformed_mirror_credentials_are_refused_without_quoting_them(homelab_raw, value, expected):
    homelab_raw["mirror"]["credentialsOpenToSubnet"] = True
    lines = refusal(homelab_raw, secrets={**DUMMY_SECRETS, "mirrorCredentials": value})
    assert lines == [f"netstab:mirrorCredentials: {expected}"]
    assert CANARY not in "\n".join(lines)


def test_any_password_text_is_accepted(homelab_raw):
    password = 'a "quoted" \\ back\\slash\nand a second line'  # the mirror hands it over base64-encoded
    value = json.dumps({"docker.io": {"username": "me", "password": password}})
    homelab_raw["mirror"]["credentialsOpenToSubnet"] = True
    recording = run_program(homelab_raw, secrets={**DUMMY_SECRETS, "mirrorCredentials": value})
    assert recording.named("mirror-credentials").inputs["stdin"]


def test_credentials_on_the_open_mirror_are_refused_until_the_exposure_is_accepted(homelab_raw):
    value = json.dumps({"docker.io": {"username": "me", "password": CANARY}})
    assert refusal(homelab_raw, secrets={**DUMMY_SECRETS, "mirrorCredentials": value}) == [
        "netstab:mirrorCredentials: the mirror has no authentication, so every client on 10.27.27.0/24 (every pod included) could pull "
        "through it whatever these credentials can, that account's private images too. Use an account without private images and set "
        "mirror.credentialsOpenToSubnet: true, or remove the secret (pulumi config rm netstab:mirrorCredentials)"]


def test_the_examples_placeholder_keys_are_refused_before_any_resource(homelab_raw):
    recording = harness.Recording()
    assert refusal(homelab_raw, keep_placeholders=True, recording=recording) == [
        "still the example's placeholders (replace each with the real key: ssh-keyscan -t ed25519 HOST for a host key, your own "
        "public key for ssh.publicKeys): proxmox.sshHostKey, ssh.publicKeys[0], gateway.hostKey"]
    assert recording.resources == []


def test_real_keys_where_the_placeholders_were_deploy(homelab_raw):
    assert run_program(homelab_raw).of_type(VM)  # the harness's stand-ins: the same stack less the mark


def test_an_older_pulumi_cli_is_refused_before_any_resource(homelab_raw, monkeypatch):
    import pulumi

    asked: list[str] = []

    def older_engine(version_range: str) -> None:
        asked.append(version_range)
        raise Exception(f'Pulumi CLI version 3.200.0 does not satisfy the version range "{version_range}"')

    monkeypatch.setattr(pulumi, "require_pulumi_version", older_engine)
    recording = harness.Recording()
    with pytest.raises(SystemExit) as caught:
        run_program(homelab_raw, recording=recording)
    assert asked == [">=3.207.0"]
    assert str(caught.value).startswith("netstab needs Pulumi CLI 3.207.0 or newer (docs/prerequisites.md); `pulumi version` shows yours")
    assert recording.resources == []


def test_a_new_enough_cli_is_asked_once_and_the_program_goes_on(homelab_raw, monkeypatch):
    import pulumi

    asked: list[str] = []
    monkeypatch.setattr(pulumi, "require_pulumi_version", asked.append)
    assert run_program(homelab_raw).of_type(VM) and asked == [">=3.207.0"]
