"""The bank client's two secrets: its signing key and the function app's key, from the environment or Key Vault.

A bank runs the client where its data is; the secrets come from that bank's own Key Vault (read
with ``DefaultAzureCredential``: the bank's managed identity, a service principal in
``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/``AZURE_CLIENT_SECRET``, or a developer login; the
``keyvault`` extra) or from environment variables (a local run, or a Databricks secret scope
passed as ``spark_env_vars``). Never from the command line, where other users of the machine could
read them in the process list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fraudops_bank.errors import CredentialsError

BANK_KEY_ENV = "FL_BANK_KEY"
FUNCTION_KEY_ENV = "FRAUDOPS_FUNCTION_KEY"
FUNCTION_KEY_HEADER = "x-functions-key"  # the Functions host's header for a function key
KEY_VAULT_ENV = "BANK_KEY_VAULT_URL"
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
        raise CredentialsError(
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
    if client is None:
        client = _secret_client(url)
    try:
        from azure.core.exceptions import AzureError

        refusals: tuple[type[BaseException], ...] = (AzureError,)
    except ImportError:  # a reader passed in, without the keyvault extra
        refusals = ()
    values: dict[str, str] = {}
    for name in (bank_key_secret, function_key_secret):
        try:
            value = client.get_secret(name).value
        except refusals as exc:
            raise CredentialsError(
                f"could not read secret {name} from {url}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}"
            ) from None
        if not value:
            raise CredentialsError(f"secret {name} in {url} is empty")
        values[name] = value
    return BankCredentials(values[bank_key_secret].encode(), values[function_key_secret])


def _secret_client(url: str) -> SecretReader:
    try:
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.secrets import SecretClient
    except ImportError:
        raise CredentialsError(
            "reading the keys from Key Vault needs the keyvault extra: pip install 'fraudops-bank[keyvault]' "
            f"(or set {BANK_KEY_ENV} and {FUNCTION_KEY_ENV} instead)"
        ) from None
    return SecretClient(vault_url=url, credential=DefaultAzureCredential())  # the bank's own identity
