"""The manifests rehearsed as pods on one machine: each pod a local process in its own
network namespace, with exactly the environment its manifest gives it."""
