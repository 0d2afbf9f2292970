"""Seal and open secrets (connection passwords) with AES-256-GCM.

A sealed secret is a printable token ``v1.<key_id>.<base64url(nonce || ciphertext || tag)>``:
the key id says which key of the ring opens it, so keys can rotate without a flag day.
The associated data binds each token to its owner, its row and its purpose, so a token
copied to another row (or another user's row) does not open. Keys come from
``MASTER_ENCRYPTION_KEY`` (passphrases stretched with scrypt; several separated by
commas, the first encrypts) or, in local mode, from a random key file created 0600.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import VaultError, action

if TYPE_CHECKING:
    from .settings import Settings

TOKEN_VERSION = "v1"
NONCE_BYTES = 12  # 96-bit nonce, the size GCM is designed for
KEY_BYTES = 32  # AES-256
DEFAULT_PURPOSE = "connection.password"

# A fixed application salt: passphrases must derive the same key in every process
# (kernel, server, hub service) without storing anything. The passphrase is the secret.
_APP_SALT = b"aigis-jupyter/vault/scrypt/v1"
# OWASP's scrypt recommendation (N=2^17, r=8, p=1): ~0.5 s and 128 MiB, paid once per process.
_SCRYPT_N = 2**17
_SCRYPT_R = 8
_SCRYPT_P = 1

_ROTATE_HINT = (
    "Set MASTER_ENCRYPTION_KEY to the key it was sealed with; when you rotate keys, put the "
    "new key first and keep the old one after a comma (MASTER_ENCRYPTION_KEY=new,old), "
    "then re-seal the stored secrets with the new key."
)


@functools.lru_cache(maxsize=16)
def derive_key(passphrase: str) -> bytes:
    """Stretch a passphrase into a 32-byte key (scrypt); cached so each process pays once."""
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    if not passphrase:
        raise VaultError("The master encryption key is empty: set MASTER_ENCRYPTION_KEY to a "
                         "long random passphrase.")
    kdf = Scrypt(salt=_APP_SALT, length=KEY_BYTES, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return kdf.derive(passphrase.encode("utf-8"))


def key_id_for(key: bytes) -> str:
    """A short public fingerprint of a key; reveals nothing usable about the key."""
    return hmac.new(key, b"aigis-jupyter key id", hashlib.sha256).hexdigest()[:12]


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _aad(owner_id: str, row_id: str, purpose: str) -> bytes:
    # JSON keeps the three fields unambiguous whatever characters they hold.
    return json.dumps([TOKEN_VERSION, purpose, str(owner_id), str(row_id)]).encode("utf-8")


@dataclass(frozen=True)
class _Key:
    key_id: str
    source: str  # "MASTER_ENCRYPTION_KEY #1", "key file /path": for messages only
    material: bytes

    def __repr__(self) -> str:  # never show key material
        return f"_Key(key_id={self.key_id!r}, source={self.source!r})"


def _check_key_file_mode(path: Path) -> None:
    if os.name == "nt":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise VaultError(
            f"The key file {path} is readable by other users (mode {mode:o}). "
            f"Run `chmod 600 {path}` (and check who could have copied it)."
        )


def _read_key_file(path: Path) -> bytes:
    _check_key_file_mode(path)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = _b64d(text)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise VaultError(
            f"The key file {path} is not a valid key (expected {KEY_BYTES} bytes, base64url). "
            "Restore it from a backup; if it is lost, delete it and re-enter your connection "
            "passwords."
        )
    return key


def load_or_create_key_file(path: Path) -> bytes:
    """Read the local key file, creating it 0600 on first use (atomic, race-safe)."""
    path = Path(path)
    if path.exists():
        return _read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(_b64e(os.urandom(KEY_BYTES)) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            # link() fails if another process created the file first: then theirs wins.
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # filesystems without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return _read_key_file(path)


class Vault:
    """A key ring: the first key seals, every key opens."""

    def __init__(self, keys: list[tuple[bytes, str]]) -> None:
        if not keys:
            raise VaultError("No encryption key is configured: set MASTER_ENCRYPTION_KEY.")
        ring: list[_Key] = []
        for material, source in keys:
            if len(material) != KEY_BYTES:
                raise VaultError(f"The encryption key from {source} is not {KEY_BYTES} bytes.")
            kid = key_id_for(material)
            if all(k.key_id != kid for k in ring):
                ring.append(_Key(kid, source, material))
        self._ring = ring
        self._by_id = {k.key_id: k for k in ring}

    @classmethod
    def from_passphrases(cls, passphrases: list[str]) -> Vault:
        return cls([(derive_key(p), f"MASTER_ENCRYPTION_KEY #{i + 1}")
                    for i, p in enumerate(passphrases)])

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        """Master keys when configured (plus an existing local key file, to migrate from it);
        otherwise the local key file, created on first use."""
        keys = [(derive_key(p), f"MASTER_ENCRYPTION_KEY #{i + 1}")
                for i, p in enumerate(settings.master_keys)]
        path = settings.resolved_key_file
        if keys:
            if path.exists():
                keys.append((_read_key_file(path), f"key file {path}"))
        else:
            keys.append((load_or_create_key_file(path), f"key file {path}"))
        return cls(keys)

    @property
    def key_id(self) -> str:
        """Id of the primary key, the one that seals."""
        return self._ring[0].key_id

    @property
    def key_ids(self) -> list[str]:
        return [k.key_id for k in self._ring]

    def __repr__(self) -> str:
        return f"Vault(key_ids={self.key_ids!r})"

    def seal(self, plaintext: str, *, owner_id: str, row_id: str,
             purpose: str = DEFAULT_PURPOSE) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not isinstance(plaintext, str):
            raise VaultError("Only text secrets can be sealed.")
        key = self._ring[0]
        nonce = os.urandom(NONCE_BYTES)
        ct = AESGCM(key.material).encrypt(nonce, plaintext.encode("utf-8"),
                                          _aad(owner_id, row_id, purpose))
        return f"{TOKEN_VERSION}.{key.key_id}.{_b64e(nonce + ct)}"

    @staticmethod
    def parse(token: str) -> tuple[str, bytes, bytes]:
        """Split a token into (key id, nonce, ciphertext+tag); VaultError if malformed."""
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3 or parts[0] != TOKEN_VERSION or not parts[1]:
            raise VaultError("The stored secret is not a sealed token this version understands; "
                             "re-enter the password for this connection.")
        try:
            raw = _b64d(parts[2])
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) < NONCE_BYTES + 16:
            raise VaultError("The stored secret is truncated or corrupted; re-enter the password "
                             "for this connection.")
        return parts[1], raw[:NONCE_BYTES], raw[NONCE_BYTES:]

    def open(self, token: str, *, owner_id: str, row_id: str,
             purpose: str = DEFAULT_PURPOSE) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        kid, nonce, ct = self.parse(token)
        key = self._by_id.get(kid)
        if key is None:
            raise VaultError(
                f"This secret was sealed with key id {kid}, which is not configured here "
                f"(configured: {', '.join(self.key_ids)}). {_ROTATE_HINT}",
                reason="unknown_key", action=action("set_env", name="MASTER_ENCRYPTION_KEY"),
            )
        try:
            plain = AESGCM(key.material).decrypt(nonce, ct, _aad(owner_id, row_id, purpose))
        except InvalidTag:
            raise VaultError(
                "The stored secret could not be decrypted: it was altered or belongs to another "
                "row. Re-enter the password for this connection.",
                reason="tampered",
            ) from None
        return plain.decode("utf-8")

    def needs_rotation(self, token: str) -> bool:
        """True when the token was sealed by a key other than the primary one."""
        return self.parse(token)[0] != self.key_id

    def reseal(self, token: str, *, owner_id: str, row_id: str,
               purpose: str = DEFAULT_PURPOSE) -> str:
        """Open with whichever key sealed it, seal again with the primary key."""
        return self.seal(self.open(token, owner_id=owner_id, row_id=row_id, purpose=purpose),
                         owner_id=owner_id, row_id=row_id, purpose=purpose)


__all__ = ["DEFAULT_PURPOSE", "Vault", "VaultError", "derive_key", "key_id_for",
           "load_or_create_key_file"]
