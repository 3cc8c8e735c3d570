"""Monitoring what was served: delayed labels joined to predictions, realised performance, live drift, alerts."""
