"""The suite's training loop (accelerate, DVCLive, resumable checkpoints) and the run records beside its outputs."""
