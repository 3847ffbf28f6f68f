"""netstab's Pulumi components, renderers and config."""

import probes  # noqa: F401  (refuses a Python older than 3.11 in one line, before anything newer is parsed)
