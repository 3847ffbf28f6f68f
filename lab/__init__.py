"""The network lab: namespaces that reproduce the plan's failure on a real kernel and prove the fix."""
