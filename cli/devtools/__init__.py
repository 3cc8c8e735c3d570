"""Helpers for local development, tests and benchmarks; never imported by the function app."""
