"""Domain library of the fraud-detection app. Importable without ``azure.functions``."""
