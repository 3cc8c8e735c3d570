"""The domain: the dataset contract, its row rules, errors and settings. No I/O."""
