"""Training: optimizers and losses by name, the two-phase trainer, ``fit``."""
