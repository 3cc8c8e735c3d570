"""Scoring: the champion model in memory, batch scoring and explanations."""
