"""CURVE key files, the server's configuration checks and ``zmqactors keygen``: no sockets."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
import zmq.auth
from oslo_config import cfg

import zmqactors as za
from zmqactors import cli
from zmqactors.matchmaker import FileMatchmaker, MemoryMatchmaker, Route
from zmqactors.net import keys as key_files
from zmqactors.net import security
from zmqactors.options import Settings, parse_url, register_opts

pytestmark = pytest.mark.unit

ROOT = os.geteuid() == 0


def key_pair(directory: Path, name: str = "host", mode: int = 0o600) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = map(Path, zmq.auth.create_certificates(directory, name))
    secret.chmod(mode)
    return public, secret


def refused(call, *fragments: str) -> str:
    with pytest.raises(za.SecurityError) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    return message


# -- the secret key file --------------------------------------------------------------


def test_a_sound_key_pair_loads_and_hides_its_secret(tmp_path):
    public, secret = key_pair(tmp_path)
    keys = key_files.load_key_pair(str(secret))
    assert keys.public == zmq.auth.load_certificate(public)[0]
    assert len(keys.public) == len(keys.secret) == 40
    assert keys.secret.decode() not in repr(keys)


def test_a_missing_secret_key_file_is_refused_by_name(tmp_path):
    path = str(tmp_path / "nope.key_secret")
    refused(lambda: key_files.load_key_pair(path), path, "does not exist")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_a_secret_key_others_or_the_group_may_read_or_write_is_refused(tmp_path, mode):
    _, secret = key_pair(tmp_path, mode=mode)
    refused(
        lambda: key_files.load_key_pair(str(secret)),
        str(secret),
        "by group or others",
        f"{mode:04o}",
    )


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_secret_key_is_accepted(tmp_path, mode):
    _, secret = key_pair(tmp_path, mode=mode)
    assert key_files.load_key_pair(str(secret)).path == str(secret)


@pytest.mark.skipif(ROOT, reason="root reads files whatever their mode")
def test_an_unreadable_secret_key_file_is_refused(tmp_path):
    _, secret = key_pair(tmp_path, mode=0o000)
    refused(lambda: key_files.load_key_pair(str(secret)), str(secret), "unreadable")


def test_a_secret_key_file_that_cannot_be_opened_is_refused(tmp_path, monkeypatch):
    # Root reads anything: make opening the file fail as it does for others.
    _, secret = key_pair(tmp_path)
    real_open = os.open

    def deny(path, *args, **kwargs):
        if Path(path) == secret:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    refused(lambda: key_files.load_key_pair(str(secret)), str(secret), "unreadable")


def test_a_directory_is_not_a_secret_key_file(tmp_path):
    refused(lambda: key_files.load_key_pair(str(tmp_path)), str(tmp_path), "not a regular file")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "no public-key line"),
        ("garbage\x00\xff not a certificate", "no public-key line"),
        ('curve\n    public-key = "tooshort"\n    secret-key = "x"\n', "public key is not"),
        ('curve\n    public-key = "' + "a" * 40 + '"\n', "holds no secret-key"),
        (
            'curve\n    public-key = "' + "a" * 40 + '"\n    secret-key = "' + "~" * 40 + '"\n',
            "secret key is not",
        ),
    ],
)
def test_a_malformed_secret_key_file_is_refused_with_the_problem(tmp_path, content, problem):
    path = tmp_path / "bad.key_secret"
    path.write_text(content, errors="surrogateescape")
    path.chmod(0o600)
    refused(lambda: key_files.load_key_pair(str(path)), str(path), "malformed", problem)


def test_a_public_key_file_given_as_the_secret_key_is_refused(tmp_path):
    public, _ = key_pair(tmp_path)
    public.chmod(0o600)
    refused(lambda: key_files.load_key_pair(str(public)), str(public), "holds no secret-key")


# -- the allow-list -------------------------------------------------------------------


def test_the_allow_list_holds_every_public_key_of_the_directory(tmp_path):
    first, _ = key_pair(tmp_path / "keys", "a")
    second, _ = key_pair(tmp_path / "keys", "b")
    allowed = key_files.load_public_keys(str(tmp_path / "keys"))
    assert allowed == {zmq.auth.load_certificate(p)[0] for p in (first, second)}


def test_a_missing_allow_list_directory_is_refused(tmp_path):
    path = str(tmp_path / "nope")
    refused(lambda: key_files.load_public_keys(path), path, "does not exist")


def test_a_file_is_not_an_allow_list_directory(tmp_path):
    path = tmp_path / "file"
    path.write_text("")
    refused(lambda: key_files.load_public_keys(str(path)), str(path), "not a directory")


def test_an_empty_allow_list_is_refused(tmp_path):
    refused(lambda: key_files.load_public_keys(str(tmp_path)), str(tmp_path), "no *.key file")


def test_a_malformed_public_key_file_is_refused_by_name(tmp_path):
    key_pair(tmp_path, "good")
    bad = tmp_path / "bad.key"
    bad.write_text("metadata\n")
    refused(lambda: key_files.load_public_keys(str(tmp_path)), str(bad), "malformed")


# -- a server's configuration ---------------------------------------------------------


def test_without_curve_options_a_server_has_no_curve():
    assert security.prepare_server(Settings()) is None


def test_a_server_with_only_a_secret_key_is_refused(tmp_path):
    _, secret = key_pair(tmp_path)
    settings = Settings(curve_secret_key_file=str(secret))
    refused(lambda: security.prepare_server(settings), "curve_public_keys_dir is not")


def test_a_server_with_only_an_allow_list_is_refused(tmp_path):
    key_pair(tmp_path)
    settings = Settings(curve_public_keys_dir=str(tmp_path))
    refused(lambda: security.prepare_server(settings), "curve_secret_key_file is not")


def test_a_server_key_must_be_z85_of_40_characters():
    good = zmq.curve_keypair()[0].decode()
    assert key_files.check_server_key(good) == good
    for bad in ("", "x" * 39, "~" * 40, None, 40):
        with pytest.raises(za.SecurityError):
            key_files.check_server_key(bad)


# -- options --------------------------------------------------------------------------


def test_curve_options_are_url_parameters():
    settings = parse_url(
        "zmq+memory://x?curve_secret_key_file=/etc/k%20s/host.key_secret"
        "&curve_public_keys_dir=/etc/keys"
    )
    assert settings.curve_secret_key_file == "/etc/k s/host.key_secret"  # noqa: S105 - a path
    assert settings.curve_public_keys_dir == "/etc/keys"
    assert Settings().curve_secret_key_file is None
    assert Settings().curve_public_keys_dir is None


@pytest.mark.parametrize("value", ["", "%00"])
def test_an_empty_curve_path_is_a_configuration_error(value):
    with pytest.raises(za.ConfigurationError, match="curve_secret_key_file"):
        parse_url(f"zmq://?curve_secret_key_file={value}")


def test_curve_options_come_from_oslo_config():
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([])
    conf.set_override("curve_secret_key_file", "/k/host.key_secret", group="zmq")
    conf.set_override("curve_public_keys_dir", "/k/allowed", group="zmq")
    settings = Settings.from_conf(conf)
    assert settings.curve_secret_key_file == "/k/host.key_secret"  # noqa: S105 - a path
    assert settings.curve_public_keys_dir == "/k/allowed"


# -- routes keep the server's key -----------------------------------------------------


def test_memory_and_file_matchmakers_store_and_return_the_server_key(tmp_path):
    key = zmq.curve_keypair()[0].decode()
    for mm in (MemoryMatchmaker(f"curve-{time.monotonic_ns()}"), FileMatchmaker(tmp_path)):
        mm.register("default/t", "a", "tcp://127.0.0.1:1", 60, key)
        mm.register("default/t", "b", "tcp://127.0.0.1:2", 60)
        routes = mm.lookup("default/t")
        assert [(r.server, r.server_key) for r in routes] == [("a", key), ("b", None)]
        assert [r.server_key for _, r in mm.entries()] == [key, None]
        mm.unregister("default/t", "a", "tcp://127.0.0.1:1", key)
        assert [r.server for r in mm.lookup("default/t")] == ["b"]


def test_a_route_file_written_before_curve_reads_as_a_route_without_a_key(tmp_path):
    mm = FileMatchmaker(tmp_path)
    mm.register("default/t", "old", "tcp://127.0.0.1:1", 60)
    (route_file,) = (p for p in tmp_path.rglob("*.route"))
    stored = json.loads(route_file.read_bytes())
    # The old format, exactly: no server_key field at all.
    assert set(stored) == {"key", "server", "address", "expires"}
    (route,) = mm.lookup("default/t")
    assert route == Route("old", "tcp://127.0.0.1:1", stored["expires"])
    assert route.server_key is None


def test_targets_show_the_server_key():
    key = zmq.curve_keypair()[0].decode()
    now = time.time()
    row = cli.describe("default/t", Route("s", "tcp://127.0.0.1:1", now + 9, key), now)
    assert row["server_key"] == key
    plain = cli.describe("default/t", Route("s", "tcp://127.0.0.1:1", now + 9), now)
    assert plain["server_key"] is None


# -- keygen ---------------------------------------------------------------------------


def test_keygen_writes_a_usable_key_pair_with_a_private_secret(tmp_path, capsys):
    directory = tmp_path / "new" / "keys"
    assert cli.main(["keygen", str(directory), "--name", "node-1"]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    printed = json.loads(out)
    public, secret = Path(printed["public_key_file"]), Path(printed["secret_key_file"])
    assert (public, secret) == (directory / "node-1.key", directory / "node-1.key_secret")
    assert str(secret) in err
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    keys = key_files.load_key_pair(str(secret))
    assert key_files.load_public_keys(str(directory)) == {keys.public}
    # Nothing else is left behind (the staging directory is gone).
    assert sorted(p.name for p in directory.iterdir()) == ["node-1.key", "node-1.key_secret"]


def test_keygen_never_overwrites_a_key(tmp_path, capsys):
    assert cli.main(["keygen", str(tmp_path), "--name", "a"]) == cli.EXIT_OK
    before = (tmp_path / "a.key_secret").read_bytes()
    capsys.readouterr()
    assert cli.main(["keygen", str(tmp_path), "--name", "a"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "already exists" in err
    assert "Traceback" not in err
    assert (tmp_path / "a.key_secret").read_bytes() == before


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a/b", ""])
def test_keygen_refuses_a_bad_name(tmp_path, capsys, name):
    assert cli.main(["keygen", str(tmp_path), "--name", name]) == cli.EXIT_USAGE
    assert "bad key name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_keygen_refuses_a_file_as_directory(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("")
    assert cli.main(["keygen", str(path)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert str(path) in err
    assert "not a directory" in err


def test_keygen_refuses_a_directory_it_cannot_create(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["keygen", str(blocker / "sub")]) == cli.EXIT_USAGE
    assert "cannot be created" in capsys.readouterr().err


def test_keygen_without_a_directory_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["keygen"])
    assert info.value.code == cli.EXIT_USAGE
    assert "DIR" in capsys.readouterr().err
