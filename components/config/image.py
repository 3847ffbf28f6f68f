"""The `image` section and its rule."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import ValidationInfo, field_validator

from components.config.base import Problems, Section, rule
from components.config.fields import FILE_NAME, FileName, between, https_url, show


class ImageConfig(Section):
    """What the VMs boot: a cloud image Proxmox downloads (`url`) or a template to clone (`templateVmId`), exactly one."""

    url: Annotated[str, https_url("an https:// URL of a cloud image")] | None = None
    """Cloud image Proxmox downloads."""
    file_name: FileName | None = None
    """File name of the downloaded image (default: the URL's last path segment)."""
    template_vm_id: Annotated[int, between(100, 999_999_999)] | None = None
    """An existing template VM to clone instead of a cloud image."""

    @field_validator("file_name")
    @classmethod
    def _defaults_to_the_url_basename(cls, value: str | None, info: ValidationInfo) -> str | None:
        url = info.data.get("url")
        if value or not url:
            return value
        return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]

    @rule("url", "file_name")
    def _defaulted_file_name_is_a_file_name(self) -> Problems:
        name = self.file_name
        if name is not None and (not FILE_NAME.fullmatch(name) or len(name) > 255):  # a given one was checked as a FileName
            yield ("fileName",), f"the URL's last path segment {show(name)} is not a file name; set image.fileName (such as noble.img)"

    @rule("url", "template_vm_id")
    def _exactly_one_source(self) -> Problems:
        if (self.url is None) == (self.template_vm_id is None):
            yield (), "set exactly one of image.url (a cloud image to download) or image.templateVmId"
