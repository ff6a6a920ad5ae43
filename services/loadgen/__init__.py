"""`votestream loadgen`: realistic mixed-channel traffic against a running system."""
