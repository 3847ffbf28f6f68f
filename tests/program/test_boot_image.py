"""The cloud image: `download.File`, not the deprecated `download.FileLegacy`, and still the same resource for a
stack deployed before the move (issue 23)."""

from __future__ import annotations

import json

from components.program import LEGACY_DOWNLOAD
from tests.conftest import DOWNLOAD


def test_the_image_is_a_download_file_that_takes_over_the_legacy_one(homelab_run):
    (image,) = homelab_run.of_type(DOWNLOAD)
    assert image.name == "cloud-image" and DOWNLOAD == "proxmoxve:download/file:File"
    # the same name and (no) parent as before, only the type differs: the engine finds the old state under this alias
    assert [json.loads(a) for a in image.aliases] == [{"spec": {"type": LEGACY_DOWNLOAD, "parentUrn": ""}}]
    assert image.parent.endswith("::pulumi:pulumi:Stack::netstab-test")
    assert homelab_run.of_type(LEGACY_DOWNLOAD) == []


def test_the_image_keeps_the_inputs_and_the_delete_first_replace_the_lifecycle_tables_give_it(homelab_run):
    (image,) = homelab_run.of_type(DOWNLOAD)
    assert image.delete_before_replace is True
    assert {k: image.inputs[k] for k in ("contentType", "datastoreId", "nodeName", "fileName", "overwrite")} == {
        "contentType": "iso", "datastoreId": "local", "nodeName": "pve", "fileName": "noble-server-cloudimg-amd64.img", "overwrite": False}


def test_the_sdk_deprecates_only_the_legacy_type():
    import inspect

    from pulumi_proxmoxve.download import file, file_legacy

    assert "**Deprecated:** Use `download.File` instead" in inspect.getsource(file_legacy)
    assert "Deprecated" not in inspect.getsource(file)
