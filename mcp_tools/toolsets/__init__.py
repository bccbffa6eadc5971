"""Tool areas; each module has ``register(server, client)``."""
