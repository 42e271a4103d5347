"""Command-line sub-commands, one module per room; each exposes ``register(app)``."""
