from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag

from app.kit.crypto import Keyring, KeyringError


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_values_round_trip_and_never_repeat_ciphertext() -> None:
    ring = Keyring.parse(f"k1:{key()}")
    a, b = ring.encrypt("ann@example.org", context=b"c"), ring.encrypt("ann@example.org", context=b"c")
    assert a != b and "ann" not in a
    assert ring.decrypt(a, context=b"c") == "ann@example.org"


def test_ciphertext_is_bound_to_its_column() -> None:
    ring = Keyring.parse(f"k1:{key()}")
    token = ring.encrypt("ann@example.org", context=b"members.email")
    with pytest.raises(InvalidTag):
        ring.decrypt(token, context=b"members.phone")


def test_rotation_keeps_old_values_readable_and_indexes_stable() -> None:
    old = key()
    before = Keyring.parse(f"k1:{old}")
    token = before.encrypt("ann@example.org", context=b"c")
    after = Keyring.parse(f"k2:{key()},k1:{old}")
    assert after.current_id == "k2"
    assert after.decrypt(token, context=b"c") == "ann@example.org"
    assert after.key_id_of(after.encrypt("x", context=b"c")) == "k2"
    assert after.blind_index("ann@example.org", kind="email") == before.blind_index("ann@example.org", kind="email")


@pytest.mark.parametrize("spec", ["", "k1:not-base64!", "k1:" + base64.b64encode(b"short").decode()])
def test_bad_keys_are_refused(spec: str) -> None:
    with pytest.raises(KeyringError):
        Keyring.parse(spec)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (f"index:{key()}", "only an 'index' PII key"),
        (f"k1:{key()},k1:{key()}", "listed more than once"),
        (f":{key()}", "empty or unusable id"),
        (f"k$1:{key()}", "empty or unusable id"),
        (f"{'k' * 33}:{key()}", "empty or unusable id"),  # ids are stored in a 32-character column
        (f"k1:{base64.b64encode(os.urandom(16)).decode()}", "is 16 bytes; it must be 32"),
    ],
)
def test_a_malformed_keyring_says_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(KeyringError, match=says.replace("$", r"\$")):
        Keyring.parse(spec)


def test_an_index_key_may_follow_the_encryption_keys() -> None:
    ring = Keyring.parse(f"k2:{key()},index:{key()}")
    assert ring.current_id == "k2"
