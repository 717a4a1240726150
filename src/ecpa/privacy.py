"""Personal data protection: encryption, keyed hashes for lookup, masking.

ID numbers and phone numbers are stored as AES-GCM ciphertext (a random nonce per
value) with an HMAC-SHA256 keyed hash beside them, so that exact lookup and duplicate
detection work without the plain value ever reaching the database.  Both keys are
derived from the one configured secret key with HKDF, each for its own purpose.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .config import get_settings
from .errors import ConfigurationError


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"ecpa-pii-v1", info=purpose).derive(
        secret.encode("utf-8")
    )


@dataclass(frozen=True)
class Protector:
    _aead: AESGCM
    _mac_key: bytes

    @classmethod
    def from_secret(cls, secret: str) -> "Protector":
        return cls(AESGCM(_derive(secret, b"encrypt")), _derive(secret, b"lookup"))

    def encrypt(self, value: str, field: str) -> bytes:
        # The field name is bound as associated data: a phone ciphertext cannot pass as an ID.
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, value.encode("utf-8"), field.encode())

    def decrypt(self, blob: bytes, field: str) -> str:
        return self._aead.decrypt(blob[:12], blob[12:], field.encode()).decode("utf-8")

    def lookup_hash(self, value: str, field: str) -> str:
        """Keyed hash for exact lookup; the same value always gives the same hash."""
        msg = field.encode() + b"\x00" + value.encode("utf-8")
        return hmac.new(self._mac_key, msg, hashlib.sha256).hexdigest()[:40]


@lru_cache(maxsize=4)
def _protector_for(secret: str) -> Protector:
    return Protector.from_secret(secret)


def protector() -> Protector:
    secret = get_settings().secret_key
    if not secret:
        raise ConfigurationError(
            "no secret key for personal data: set ECPA_SECRET_KEY or secret_key in ecpa.toml "
            "(`ecpa init` writes an ecpa.toml with a fresh key)"
        )
    return _protector_for(secret)


def mask_id_number(value: str) -> str:
    """``110105198503121234`` -> ``110105********1234``: region kept, birth date hidden."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str) -> str:
    """``13812345678`` -> ``138****5678``."""
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str) -> str:
    """A name on a public notice: the family name and the last character (王*山, 李*)."""
    value = (value or "").strip()
    if len(value) <= 1:
        return value
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]
