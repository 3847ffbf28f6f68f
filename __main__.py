"""netstab: a K3s cluster on Proxmox with a provably stable network path. See README.md."""

from components.program import main

main()
