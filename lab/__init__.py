"""The network lab: namespaces that reproduce the plan's failure on a real kernel and prove the fix."""

import probes  # noqa: F401  (refuses a Python older than 3.11 in one line, before anything newer is parsed)
