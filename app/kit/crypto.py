"""Encryption of PII at rest (AES-256-GCM with key ids) and keyed blind indexes for lookup."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KeyringError(ValueError):
    pass


# Key ids are stored beside every sealed value (members.pii_key_id is 32 characters) and prefix each token.
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")


@dataclass(frozen=True)
class Keyring:
    """PII keys by id; the first listed is current. Encrypted values carry their key id so keys can rotate."""

    keys: dict[str, bytes]
    current_id: str

    def __post_init__(self) -> None:
        # Blind indexes must survive rotation of the encryption key: they derive from a key named
        # "index" when configured, else from the last-listed (oldest) key. New keys go first.
        base = self.keys.get("index") or list(self.keys.values())[-1]
        object.__setattr__(self, "_ciphers", {k: AESGCM(v) for k, v in self.keys.items()})
        object.__setattr__(self, "_index_key", hashlib.sha256(b"blind-index\x00" + base).digest())

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """Parse "id:base64key[,id:base64key...]"; a bare base64 key gets the id "k1".

        Raises KeyringError saying what is wrong, without quoting any key material.
        """
        keys: dict[str, bytes] = {}
        current = None
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            key_id, _, b64 = part.rpartition(":") if ":" in part else ("k1", "", part)
            key_id = key_id.strip()
            if not _KEY_ID.fullmatch(key_id):
                raise KeyringError("a PII key has an empty or unusable id: write id:base64key, the id 1-32 letters,"
                                   " digits, '.', '_' or '-' (e.g. k1:...)")
            if key_id in keys:
                raise KeyringError(f"PII key id {key_id!r} is listed more than once")
            try:
                raw = base64.b64decode(b64.strip(), validate=True)
            except ValueError as exc:
                raise KeyringError(f"PII key {key_id!r} is not valid base64") from exc
            if len(raw) != 32:
                raise KeyringError(f"PII key {key_id!r} is {len(raw)} bytes; it must be 32 "
                                   "(44 base64 characters, e.g. from `openssl rand -base64 32`)")
            keys[key_id] = raw
            if key_id != "index":
                current = current or key_id
        if not keys:
            raise KeyringError("no PII key configured")
        if current is None:
            raise KeyringError("only an 'index' PII key is configured: a key to encrypt with must come first")
        return cls(keys=keys, current_id=current)

    def encrypt(self, plaintext: str, *, context: bytes) -> str:
        nonce = os.urandom(12)
        sealed = self._ciphers[self.current_id].encrypt(  # type: ignore[attr-defined]
            nonce, plaintext.encode(), context)
        return f"{self.current_id}${base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, context: bytes) -> str:
        key_id, _, payload = token.partition("$")
        cipher = self._ciphers.get(key_id)  # type: ignore[attr-defined]
        if cipher is None:
            raise KeyringError(f"no PII key with id {key_id!r}")
        raw = base64.b64decode(payload)
        return cipher.decrypt(raw[:12], raw[12:], context).decode()

    def blind_index(self, normalised: str, *, kind: str) -> str:
        return hmac.new(self._index_key,  # type: ignore[attr-defined]
                         f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()

    def key_id_of(self, token: str) -> str:
        return token.partition("$")[0]
