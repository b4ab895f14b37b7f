"""Encryption at rest for partner secrets: Fernet (AES-128-CBC + HMAC-SHA256) with key rotation.

ENCRYPTION_KEY holds one or more comma-separated Fernet keys; the first encrypts, any decrypts. To rotate:
put a new key first, deploy, run `manage.py partner_key reencrypt`, then drop the old key.
Without ENCRYPTION_KEY (local use only) a key is derived from SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnavailable(Exception):
    """A stored secret cannot be decrypted with the configured keys."""


def _fernet() -> MultiFernet:
    keys = [key.strip() for key in settings.ENCRYPTION_KEYS if key.strip()]
    if not keys:
        derived = hashlib.sha256(f"partner-secrets:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as error:
        raise SecretUnavailable("stored secret cannot be decrypted with the configured ENCRYPTION_KEY") from error


def rotate(ciphertext: str) -> str:
    """Re-encrypt with the current first key."""
    return _fernet().rotate(ciphertext.encode()).decode()
