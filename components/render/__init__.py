"""Pure renderers: validated config in, text or plain data out. No Pulumi, no I/O."""
