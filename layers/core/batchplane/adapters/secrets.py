"""Secrets Manager: a secret's value, read once per process and only when first needed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_secretsmanager import SecretsManagerClient


class SecretKey:
    """The secret's value as bytes, for use as a key. One GetSecretValue per process, at the first
    call: an instance that never needs the key never makes the client either."""

    def __init__(self, client: SecretsManagerClient, secret_id: str) -> None:
        self.secret_id = secret_id
        self._client = client
        self._value: bytes | None = None

    def __call__(self) -> bytes:
        if self._value is None:
            if not self.secret_id:
                raise RuntimeError("no secret is configured (PAGE_TOKEN_SECRET_ARN is empty)")
            secret = self._client.get_secret_value(SecretId=self.secret_id)
            self._value = secret["SecretString"].encode()
        return self._value
