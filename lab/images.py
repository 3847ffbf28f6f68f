"""A small multi-layer, multi-platform OCI image written as an OCI layout, for skopeo to push."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(name: str, size: int, seed: int) -> bytes:
    """A gzipped tar with one file of pseudo-random bytes (incompressible, so sizes are real)."""
    content = b"".join(hashlib.sha256(f"{seed}-{i}".encode()).digest() for i in range(size // 32 + 1))[:size]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(content), 0
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def write_layout(layout: Path, tag: str = "1", layer_sizes: tuple[int, ...] = (40_000, 120_000, 8_000)) -> None:
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    manifests = []
    for index, (os_name, arch) in enumerate(PLATFORMS):
        layers = [_layer(f"data-{n}.bin", size, seed=index * 100 + n) for n, size in enumerate(layer_sizes)]
        layer_descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(layout, data)} for data in layers]
        diff_ids = [f"sha256:{hashlib.sha256(gzip.decompress(d)).hexdigest()}" for d in layers]
        config = {"architecture": arch, "os": os_name, "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}}
        config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, json.dumps(config).encode())}
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config_desc, "layers": layer_descs}
        desc = _blob(layout, json.dumps(manifest).encode())
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **desc, "platform": {"os": os_name, "architecture": arch}})
    index_doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
    index_desc = _blob(layout, json.dumps(index_doc).encode())
    top = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", **index_desc,
                                              "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (layout / "index.json").write_text(json.dumps(top))
