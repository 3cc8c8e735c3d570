"""Supply-chain checks of the deployables' hashed locks: a vulnerability audit and a CycloneDX SBOM per package.

Run with the audit venv (`make audit`, `make sbom`): `.venv-audit/bin/python -m scripts.supply_chain.audit`.
The modules use the standard library only; pip-audit and cyclonedx-py are called as programs of that venv.
"""
