"""``rnnc train``'s engine: the training loop and optimizers, checkpoints, built-in tasks.
"""
