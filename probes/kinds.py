"""The fixed set of diagnoses the judge gives (`Diagnosis.kind`), in the order its rules try them.
docs/judge.md lists the same kinds; a test keeps the two equal."""

KINDS = {
    "healthy": "every attempt succeeded and no sweep found a limit",
    "dns": "names do not resolve",
    "upstream-down": "TCP to the service is refused or unanswered from every host that tried, the reference host included",
    "server-stall": "TCP is accepted but TLS is never answered, even at MSS 536, the reference host included",
    "pmtu-black-hole": "large segments vanish on the path and no ICMP says so: both directions, or toward the server only "
                       "(plain hellos pass, large ones such as containerd's post-quantum hello stall)",
    "tls-certificate": "the server's certificate is untrusted, expired or for another name",
    "rate-limited": "the registry answers 429 Too Many Requests",
    "server-error": "the service answers 5xx",
    "packet-loss": "some attempts fail and others to the same target succeed: packets are lost, not sized out",
    "unknown": "failures no rule explains, or no evidence",
}
