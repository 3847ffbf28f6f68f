"""What `python -m components render` writes for a config, without a folder."""

from components.config import StackConfig
from components.render.bundle import render_artifacts, render_files
from probes import agent_source


def files_of(config: StackConfig, stack: str = "homelab", path_mtu: int | None = None) -> dict[str, str]:
    return render_files(render_artifacts(config, agent_source(), stack, path_mtu))
