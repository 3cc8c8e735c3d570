"""The columns the client reads from the bank's table: the dataset contract's features, in order, and the label.

A copy of ``shared.domain.contract``'s ``creditcard`` feature list (this package installs without
the server's code); a test holds the two equal.
"""

from __future__ import annotations

FEATURES: tuple[str, ...] = (*(f"V{i}" for i in range(1, 29)), "Amount")
LABEL = "Class"
