"""The bank client's two secrets: its signing key and the function app's key, from the environment or Key Vault.

A bank runs the client where its data is; the secrets come from that bank's own Key Vault (read
with ``DefaultAzureCredential``: the bank's managed identity or its developer login) or, for a
local run, from environment variables. Never from the command line, where other users of the
machine could read them in the process list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shared.adapters.function_keys import ENV as FUNCTION_KEY_ENV
from shared.domain.errors import FraudOpsError

BANK_KEY_ENV = "FL_BANK_KEY"
BANK_KEY_SECRET = "fl-bank-key"
FUNCTION_KEY_SECRET = "fraudops-function-key"


class SecretReader(Protocol):
    """What the client needs of ``azure.keyvault.secrets.SecretClient``."""

    def get_secret(self, name: str) -> Any: ...


@dataclass(frozen=True)
class BankCredentials:
    """The key that signs the bank's updates and the key the Functions host demands on every request."""

    bank_key: bytes
    function_key: str

    def __repr__(self) -> str:  # never print the secrets
        return "BankCredentials(bank_key=***, function_key=***)"


def from_environment(environ: Mapping[str, str]) -> BankCredentials:
    """Both keys from ``FL_BANK_KEY`` and ``FRAUDOPS_FUNCTION_KEY``; a reason naming what is missing otherwise."""
    missing = [name for name in (BANK_KEY_ENV, FUNCTION_KEY_ENV) if not environ.get(name)]
    if missing:
        raise FraudOpsError(
            f"set {' and '.join(missing)} (this bank's signing key and the function app's key; the host answers "
            "401 to any request without the latter), or read both from Key Vault with --key-vault-url"
        )
    return BankCredentials(environ[BANK_KEY_ENV].encode(), environ[FUNCTION_KEY_ENV])


def from_key_vault(
    url: str,
    *,
    bank_key_secret: str = BANK_KEY_SECRET,
    function_key_secret: str = FUNCTION_KEY_SECRET,
    client: SecretReader | None = None,
) -> BankCredentials:
    """Both keys from the bank's Key Vault at ``url``; Key Vault's refusal becomes a reason naming the secret."""
    from azure.core.exceptions import AzureError

    if client is None:
        from azure.keyvault.secrets import SecretClient

        from shared.adapters.identity import azure_credential

        client = SecretClient(vault_url=url, credential=azure_credential(None))  # the bank's own identity
    values: dict[str, str] = {}
    for name in (bank_key_secret, function_key_secret):
        try:
            value = client.get_secret(name).value
        except AzureError as exc:
            raise FraudOpsError(
                f"could not read secret {name} from {url}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}"
            ) from None
        if not value:
            raise FraudOpsError(f"secret {name} in {url} is empty")
        values[name] = value
    return BankCredentials(values[bank_key_secret].encode(), values[function_key_secret])
