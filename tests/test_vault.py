"""The vault: AES-256-GCM tokens bound to owner and row, key ring, key file, rotation."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from aigis_jupyter.errors import VaultError
from aigis_jupyter.settings import Settings
from aigis_jupyter.vault import (
    NONCE_BYTES,
    Vault,
    derive_key,
    key_id_for,
    load_or_create_key_file,
)

SECRET = "correct horse battery staple"
TAMPERED = "could not be decrypted: it was altered or belongs to another row"


def _b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _b64e(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault.from_settings(Settings(data_dir=tmp_path))


def _flip(token: str, index: int) -> str:
    """Flip one bit of the raw (nonce||ciphertext||tag) bytes at `index`."""
    v, kid, body = token.split(".")
    raw = bytearray(_b64d(body))
    raw[index] ^= 0x01
    return f"{v}.{kid}.{_b64e(bytes(raw))}"


def test_round_trip_and_token_format(vault: Vault) -> None:
    token = vault.seal(SECRET, owner_id="u1", row_id="r1")
    version, kid, body = token.split(".")
    assert version == "v1"
    assert kid == vault.key_id
    raw = _b64d(body)
    assert len(raw) == NONCE_BYTES + len(SECRET.encode()) + 16  # nonce, ciphertext, tag
    assert SECRET not in token
    assert vault.open(token, owner_id="u1", row_id="r1") == SECRET
    assert vault.open(vault.seal("", owner_id="u", row_id="r"), owner_id="u", row_id="r") == ""
    unicode = "pässwörd ✓ 密码"
    assert vault.open(vault.seal(unicode, owner_id="u", row_id="r"),
                      owner_id="u", row_id="r") == unicode


def test_same_plaintext_gives_different_tokens(vault: Vault) -> None:
    a = vault.seal(SECRET, owner_id="u", row_id="r")
    b = vault.seal(SECRET, owner_id="u", row_id="r")
    assert a != b


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
def test_tampering_with_any_part_fails(vault: Vault, where: str) -> None:
    token = vault.seal(SECRET, owner_id="u1", row_id="r1")
    n = len(_b64d(token.split(".")[2]))
    index = {"nonce": 3, "ciphertext": NONCE_BYTES + 2, "tag": n - 5}[where]
    with pytest.raises(VaultError) as exc:
        vault.open(_flip(token, index), owner_id="u1", row_id="r1")
    assert TAMPERED in exc.value.message
    assert SECRET not in str(exc.value)


def test_truncated_or_extended_token_fails(vault: Vault) -> None:
    token = vault.seal(SECRET, owner_id="u", row_id="r")
    v, kid, body = token.split(".")
    raw = _b64d(body)
    with pytest.raises(VaultError):
        vault.open(f"{v}.{kid}.{_b64e(raw[:-1])}", owner_id="u", row_id="r")
    with pytest.raises(VaultError):
        vault.open(f"{v}.{kid}.{_b64e(raw + b'x')}", owner_id="u", row_id="r")
    with pytest.raises(VaultError):
        vault.open(f"{v}.{kid}.{_b64e(raw[:20])}", owner_id="u", row_id="r")


@pytest.mark.parametrize("bad", ["", "v1", "v1.abc", "v2.abc.AAAA", "v1..AAAA", "not a token",
                                 "v1.abc.!!!!"])
def test_malformed_tokens_fail_clearly(vault: Vault, bad: str) -> None:
    with pytest.raises(VaultError) as exc:
        vault.open(bad, owner_id="u", row_id="r")
    assert "re-enter the password" in exc.value.message


@pytest.mark.parametrize(
    "owner,row,purpose",
    [("u2", "r1", "connection.password"),   # another owner
     ("u1", "r2", "connection.password"),   # another row
     ("u1", "r1", "something.else"),        # another purpose
     ("r1", "u1", "connection.password")],  # fields swapped
)
def test_associated_data_binds_owner_row_and_purpose(vault: Vault, owner: str, row: str,
                                                     purpose: str) -> None:
    token = vault.seal(SECRET, owner_id="u1", row_id="r1")
    with pytest.raises(VaultError) as exc:
        vault.open(token, owner_id=owner, row_id=row, purpose=purpose)
    assert TAMPERED in exc.value.message


def test_changing_the_key_id_in_the_token_fails(tmp_path: Path) -> None:
    a = Vault([(os.urandom(32), "a"), (os.urandom(32), "b")])
    token = a.seal(SECRET, owner_id="u", row_id="r")
    _, _, body = token.split(".")
    other = a.key_ids[1]
    with pytest.raises(VaultError) as exc:
        a.open(f"v1.{other}.{body}", owner_id="u", row_id="r")
    assert TAMPERED in exc.value.message


def test_wrong_master_key_gives_a_clear_error() -> None:
    sealed_with = Vault.from_passphrases(["first passphrase"])
    token = sealed_with.seal(SECRET, owner_id="u", row_id="r")
    other = Vault.from_passphrases(["second passphrase"])
    with pytest.raises(VaultError) as exc:
        other.open(token, owner_id="u", row_id="r")
    msg = exc.value.message
    assert f"sealed with key id {sealed_with.key_id}" in msg
    assert "not configured" in msg
    assert other.key_id in msg
    assert "MASTER_ENCRYPTION_KEY" in msg and "comma" in msg
    assert exc.value.reason == "unknown_key"
    assert SECRET not in msg and "first passphrase" not in msg


def test_several_keys_first_seals_all_open() -> None:
    old = Vault.from_passphrases(["old key"])
    token_old = old.seal(SECRET, owner_id="u", row_id="r")
    ring = Vault.from_passphrases(["new key", "old key"])
    assert ring.key_id != old.key_id
    assert ring.key_ids == [ring.key_id, old.key_id]
    assert ring.open(token_old, owner_id="u", row_id="r") == SECRET
    assert ring.needs_rotation(token_old)
    fresh = ring.reseal(token_old, owner_id="u", row_id="r")
    assert fresh.split(".")[1] == ring.key_id
    assert not ring.needs_rotation(fresh)
    assert Vault.from_passphrases(["new key"]).open(fresh, owner_id="u", row_id="r") == SECRET


def test_no_repeated_nonce_over_100k_encryptions(vault: Vault) -> None:
    nonces = set()
    n = 100_000
    for i in range(n):
        token = vault.seal("x", owner_id="u", row_id=str(i % 7))
        nonces.add(_b64d(token.split(".")[2])[:NONCE_BYTES])
    assert len(nonces) == n


def test_passphrase_kdf_is_deterministic_and_stretched() -> None:
    derive_key.cache_clear()
    k1 = derive_key("a passphrase")
    derive_key.cache_clear()
    k2 = derive_key("a passphrase")
    assert k1 == k2 and len(k1) == 32
    assert derive_key("a passphrase ") != k1
    assert k1 != b"a passphrase".ljust(32, b"\0")
    # the same key id in a fresh process: no per-process salt
    code = ("from aigis_jupyter.vault import derive_key, key_id_for;"
            "print(key_id_for(derive_key('a passphrase')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == key_id_for(k1)
    with pytest.raises(VaultError):
        derive_key("")


def test_kdf_is_computed_once_per_process() -> None:
    derive_key.cache_clear()
    Vault.from_passphrases(["cached passphrase"])
    Vault.from_passphrases(["cached passphrase"])
    info = derive_key.cache_info()
    assert info.misses == 1 and info.hits >= 1


def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "nested" / "dir")
    v1 = Vault.from_settings(settings)
    path = settings.resolved_key_file
    assert path.exists()
    if os.name != "nt":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(_b64d(path.read_text().strip())) == 32
    v2 = Vault.from_settings(settings)
    assert v1.key_id == v2.key_id
    token = v1.seal(SECRET, owner_id="u", row_id="r")
    assert v2.open(token, owner_id="u", row_id="r") == SECRET
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_key_file_with_wide_permissions_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    Vault.from_settings(settings)
    path = settings.resolved_key_file
    path.chmod(0o644)
    with pytest.raises(VaultError) as exc:
        Vault.from_settings(settings)
    assert "chmod 600" in exc.value.message


def test_corrupt_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"too short")
    os.close(fd)
    with pytest.raises(VaultError) as exc:
        load_or_create_key_file(path)
    assert "not a valid key" in exc.value.message


def test_key_file_creation_race_yields_one_key(tmp_path: Path) -> None:
    path = tmp_path / "race" / "master.key"
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        keys.append(load_or_create_key_file(path))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]


def test_master_key_mode_still_opens_key_file_secrets(tmp_path: Path) -> None:
    """Moving from local mode to a master key: old tokens stay readable until rotated."""
    local = Vault.from_settings(Settings(data_dir=tmp_path))
    token = local.seal(SECRET, owner_id="u", row_id="r")
    master = Vault.from_settings(Settings(data_dir=tmp_path, master_keys=["the master"]))
    assert master.key_id == Vault.from_passphrases(["the master"]).key_id
    assert master.open(token, owner_id="u", row_id="r") == SECRET
    assert master.needs_rotation(token)


def test_master_key_mode_does_not_create_a_key_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, master_keys=["only the master"])
    Vault.from_settings(settings)
    assert not settings.resolved_key_file.exists()


def test_repr_and_errors_never_show_secrets(vault: Vault) -> None:
    token = vault.seal(SECRET, owner_id="u", row_id="r")
    assert SECRET not in repr(vault)
    assert "material" not in repr(vault._ring[0])
    for bad in (_flip(token, 1), _flip(token, 20)):
        try:
            vault.open(bad, owner_id="u", row_id="r")
        except VaultError as exc:
            assert SECRET not in str(exc) and SECRET not in repr(exc)


def test_empty_key_ring_is_refused() -> None:
    with pytest.raises(VaultError):
        Vault([])
    with pytest.raises(VaultError):
        Vault([(b"short", "x")])


# -- through the service: rows in the store ---------------------------------------------

def _service(tmp_path: Path, keys: list[str]):
    from aigis_jupyter.service import AigisService

    return AigisService(Settings(data_dir=tmp_path, master_keys=keys))


def test_rotation_reseals_every_row_with_none_lost(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from aigis_jupyter.store.models import Connection

    old = _service(tmp_path, ["old master key"])
    users = [old.user(f"user{i}") for i in range(3)]
    expected: dict[str, str] = {}
    for i in range(60):
        scope = users[i % 3]
        c = scope.create_connection({"name": f"c{i}", "db_type": "postgres" if i % 2 else "mysql",
                                     "host": "db.example", "database": "d",
                                     "password": f"pw-{i}-{'x' * (i % 7)}"})
        expected[c["id"]] = f"pw-{i}-{'x' * (i % 7)}"
    users[0].create_connection({"name": "nopw", "db_type": "postgres", "host": "h"})
    old_kid = old.vault.key_id
    old.close()

    ring = _service(tmp_path, ["new master key", "old master key"])
    assert ring.rotate_keys() == 60
    assert ring.rotate_keys() == 0  # idempotent
    with ring.store.engine.connect() as conn:
        tokens = [t for (t,) in conn.execute(sa.select(Connection.password_sealed)) if t]
    assert len(tokens) == 60
    assert all(t.split(".")[1] == ring.vault.key_id != old_kid for t in tokens)
    ring.close()

    new_only = _service(tmp_path, ["new master key"])
    seen = {}
    for name in ("user0", "user1", "user2"):
        scope = new_only.user(name)
        for c in scope.list_connections():
            seen[c["id"]] = scope.connection_spec(c["id"]).password
    assert {k: v for k, v in seen.items() if v is not None} == expected
    new_only.close()

    # the old key alone no longer opens anything: a clear error naming the new key id
    stale = _service(tmp_path, ["old master key"])
    scope = stale.user("user1")
    with pytest.raises(VaultError) as exc:
        scope.connection_spec(scope.list_connections()[0]["id"])
    assert "not configured" in exc.value.message and "MASTER_ENCRYPTION_KEY" in exc.value.message
    stale.close()


def test_rotation_is_all_or_nothing(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from aigis_jupyter.store.models import Connection

    a = _service(tmp_path, ["key a"])
    scope = a.user("u")
    for i in range(5):
        scope.create_connection({"name": f"c{i}", "db_type": "postgres", "host": "h",
                                 "password": f"p{i}"})
    a.close()
    b = _service(tmp_path, ["key b"])
    b.user("v").create_connection({"name": "other", "db_type": "postgres", "host": "h",
                                   "password": "q"})
    b.close()
    # a ring holding key c and key a, but not key b: the row sealed by b cannot be opened
    c = _service(tmp_path, ["key c", "key a"])
    with c.store.engine.connect() as conn:
        before = sorted(t for (t,) in conn.execute(sa.select(Connection.password_sealed)))
    with pytest.raises(VaultError) as exc:
        c.rotate_keys()
    assert "Nothing was rotated" in exc.value.message and "'other'" in exc.value.message
    with c.store.engine.connect() as conn:
        after = sorted(t for (t,) in conn.execute(sa.select(Connection.password_sealed)))
    assert after == before
    c.close()


def test_ciphertext_moved_to_another_row_does_not_open(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from aigis_jupyter.store.models import Connection

    svc = _service(tmp_path, [])
    alice, bob = svc.user("alice"), svc.user("bob")
    a1 = alice.create_connection({"name": "a1", "db_type": "postgres", "host": "h",
                                  "password": "alice-1"})
    a2 = alice.create_connection({"name": "a2", "db_type": "postgres", "host": "h",
                                  "password": "alice-2"})
    b1 = bob.create_connection({"name": "b1", "db_type": "postgres", "host": "h",
                                "password": "bob-1"})
    with svc.store.engine.begin() as conn:
        token = conn.execute(sa.select(Connection.password_sealed)
                             .where(Connection.id == a1["id"])).scalar_one()
        for target in (a2["id"], b1["id"]):  # same owner, other row; other owner
            conn.execute(sa.update(Connection).where(Connection.id == target)
                         .values(password_sealed=token))
    with pytest.raises(VaultError) as exc:
        alice.connection_spec(a2["id"])
    assert TAMPERED in exc.value.message and "alice-1" not in exc.value.message
    with pytest.raises(VaultError):
        bob.connection_spec(b1["id"])
    assert alice.connection_spec(a1["id"]).password == "alice-1"
    svc.close()
