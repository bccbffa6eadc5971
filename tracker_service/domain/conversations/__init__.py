"""Conversations: seed 003's chat turns, in order, with the tasks and handoffs they led to."""
