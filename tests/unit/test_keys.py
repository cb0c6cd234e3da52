"""Strict key files (issue #12 row 5): symbolic links, owners, modes (like StrictModes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import zmq.auth

import zmqactors as za
from zmqactors.net import keys as key_files

pytestmark = pytest.mark.unit

ROOT = os.geteuid() == 0
# A uid that is neither ours nor root's.
STRANGER = 4242
as_root = pytest.mark.skipif(not ROOT, reason="only root can give a file to another user")


def key_pair(directory: Path, name: str = "host") -> tuple[Path, Path]:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    public, secret = map(Path, zmq.auth.create_certificates(directory, name))
    secret.chmod(0o600)
    public.chmod(0o644)
    return public, secret


def refused(call, *fragments: str) -> None:
    with pytest.raises(za.SecurityError) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value)


def test_well_kept_key_files_are_accepted(tmp_path):
    public, secret = key_pair(tmp_path / "keys")
    assert key_files.load_key_pair(str(secret)).public == zmq.auth.load_certificate(public)[0]
    assert key_files.load_public_key_files(str(tmp_path / "keys"), "keys") == {
        "host": zmq.auth.load_certificate(public)[0]
    }


# -- symbolic links -----------------------------------------------------------------


def test_a_secret_key_that_is_a_symlink_is_refused(tmp_path):
    _, secret = key_pair(tmp_path / "real")
    link = tmp_path / "real" / "link.key_secret"
    link.symlink_to(secret)
    refused(lambda: key_files.load_key_pair(str(link)), str(link), "symbolic link")


def test_a_public_key_that_is_a_symlink_is_refused_by_name(tmp_path):
    key_pair(tmp_path / "allowed", "good")
    attacker, _ = key_pair(tmp_path / "elsewhere", "attacker")
    link = tmp_path / "allowed" / "planted.key"
    link.symlink_to(attacker)
    refused(lambda: key_files.load_public_keys(str(tmp_path / "allowed")), str(link), "symbolic")


def test_a_key_directory_that_is_a_symlink_is_refused(tmp_path):
    key_pair(tmp_path / "real", "good")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real")
    refused(lambda: key_files.load_public_keys(str(link)), str(link), "symbolic link")


def test_a_fifo_as_a_key_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.key_secret"
    os.mkfifo(fifo, 0o600)
    refused(lambda: key_files.load_key_pair(str(fifo)), str(fifo), "not a regular file")


# -- owners ---------------------------------------------------------------------------


@as_root
def test_a_secret_key_owned_by_another_user_is_refused(tmp_path):
    _, secret = key_pair(tmp_path)
    os.chown(secret, STRANGER, STRANGER)
    refused(lambda: key_files.load_key_pair(str(secret)), str(secret), f"owned by uid {STRANGER}")


@as_root
def test_a_public_key_owned_by_another_user_is_refused(tmp_path):
    public, _ = key_pair(tmp_path / "allowed")
    os.chown(public, STRANGER, STRANGER)
    refused(lambda: key_files.load_public_keys(str(tmp_path / "allowed")), str(public), "owned")


@as_root
def test_a_key_directory_owned_by_another_user_is_refused(tmp_path):
    directory = tmp_path / "allowed"
    key_pair(directory)
    os.chown(directory, STRANGER, STRANGER)
    refused(lambda: key_files.load_public_keys(str(directory)), str(directory), "owned")


@as_root
def test_the_directory_of_a_secret_key_owned_by_another_user_is_refused(tmp_path):
    directory = tmp_path / "private"
    _, secret = key_pair(directory)
    os.chown(directory, STRANGER, STRANGER)
    refused(lambda: key_files.load_key_pair(str(secret)), str(secret), str(directory), "owned")


# -- modes ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o777, 0o1777])
def test_a_key_directory_group_or_others_may_write_is_refused(tmp_path, mode):
    directory = tmp_path / "allowed"
    key_pair(directory)
    directory.chmod(mode)
    refused(
        lambda: key_files.load_public_keys(str(directory)),
        str(directory),
        "writable by group or others",
        f"{mode:04o}",
    )


@pytest.mark.parametrize("mode", [0o664, 0o646])
def test_a_public_key_group_or_others_may_write_is_refused(tmp_path, mode):
    public, _ = key_pair(tmp_path / "allowed")
    public.chmod(mode)
    refused(
        lambda: key_files.load_public_keys(str(tmp_path / "allowed")),
        str(public),
        "writable by group or others",
    )


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_a_secret_key_in_a_directory_others_may_write_is_refused(tmp_path, mode):
    directory = tmp_path / "shared"
    _, secret = key_pair(directory)
    directory.chmod(mode)
    refused(
        lambda: key_files.load_key_pair(str(secret)),
        str(secret),
        str(directory),
        "writable by group or others",
    )


def test_a_readable_key_directory_is_accepted(tmp_path):
    directory = tmp_path / "allowed"
    key_pair(directory)
    directory.chmod(0o755)
    assert len(key_files.load_public_keys(str(directory))) == 1
