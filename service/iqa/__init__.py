"""Model-side pure functions shared by the worker, Triton's model.py and training."""
