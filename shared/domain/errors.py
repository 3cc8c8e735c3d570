"""Domain errors. Each carries a reason a person can read; the edges map them to statuses."""

from __future__ import annotations


class FraudOpsError(Exception):
    """Base of every domain error; ``reason`` is one sentence for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BlobNotFoundError(FraudOpsError):
    """A blob that was expected does not exist."""


class BlobExistsError(FraudOpsError):
    """A create-only write found the blob already there."""


class ConcurrentUpdateError(FraudOpsError):
    """An ETag-conditional write lost to another writer."""


class FileRejectedError(FraudOpsError):
    """A whole input file can never be processed (empty, not a table, columns missing...)."""


class ModelNotAvailableError(FraudOpsError):
    """No model is published yet, or the pinned version does not exist."""


class ModelIntegrityError(FraudOpsError):
    """A model's bytes or feature order do not match its manifest."""


class TrainingError(FraudOpsError):
    """A training run failed; the champion is left untouched."""


class RetryLaterError(FraudOpsError):
    """A dependency is busy or unavailable for now (throttled, too many conflicts): the caller may retry (503)."""


class OnlineStoreUnavailableError(RetryLaterError):
    """The online store of entity state cannot be reached and the dataset is configured to refuse (503)."""


class ErasureBusyError(RetryLaterError):
    """Another erasure holds the claim: erasures run one at a time."""


class NoCustomerColumnError(FraudOpsError):
    """A customer's rights asked of a dataset whose contract names no customer column (400)."""


class ConfigurationError(FraudOpsError):
    """The service's own settings are refused (they would make a defence a no-op); an operator must fix them."""


class InvalidModelVersionError(FraudOpsError):
    """A model version that is not a version name at all (a path, say): refused before any read (422)."""


class ModelDeprecatedError(FraudOpsError):
    """A deprecated model version asked to serve, be pinned or be promoted (410)."""


class RegistryError(FraudOpsError):
    """A registry change that does not hold (a rollback to a later version, deprecating the champion) (409)."""


class CorruptDocumentError(FraudOpsError):
    """A stored document (a manifest, a pointer, a round's state...) that is not what its type says it is."""


class NotSignedInError(FraudOpsError):
    """An admin call without a credential the service accepts: no token, a token that does not hold, or an admin
    key where keys are not accepted (401)."""


class NotAllowedError(FraudOpsError):
    """An admin call by a signed-in person who lacks the route's app role (403)."""
