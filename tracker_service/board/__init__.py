"""The board: a web UI for the people who run the agents (routes.py)."""
