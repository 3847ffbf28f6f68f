import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Resource type tokens as the SDKs register them (asserted on by the program and lifecycle rings).
VM = "proxmoxve:index/vmLegacy:VmLegacy"
SNIPPET = "proxmoxve:index/fileLegacy:FileLegacy"
DOWNLOAD = "proxmoxve:download/fileLegacy:FileLegacy"
COMMAND = "command:remote:Command"
DYNAMIC = "pulumi-python:dynamic:Resource"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
SECRET_STORE = "kubernetes:external-secrets.io/v1:ClusterSecretStore"
