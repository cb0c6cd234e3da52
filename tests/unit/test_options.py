"""Tests of zmqactors.options: opts, Settings validation, reading a ConfigOpts."""

from __future__ import annotations

import dataclasses
import os
import typing

import pytest
from oslo_config import cfg

from zmqactors.errors import ConfigurationError
from zmqactors.options import (
    ALL_OPTS,
    OPTION_BOUNDS,
    MatchmakerSpec,
    Settings,
    default_file_directory,
    list_opts,
    parse_url,
    register_opts,
)

pytestmark = pytest.mark.unit

OPTION_NAMES = {
    "bind_address",
    "host",
    "port_min",
    "port_max",
    "timeout",
    "executor_size",
    "matchmaker_url",
    "matchmaker_ttl",
    "lookup_cache_ttl",
    "max_message_size",
    "max_decoded_items",
    "max_decoded_depth",
    "max_decoded_bytes",
    "max_sockets",
    "high_water_mark",
    "linger",
    "exit_flush_timeout",
    "handshake_timeout",
    "connection_idle_timeout",
    "curve_secret_key_file",
    "curve_public_keys_dir",
    "send_tracebacks",
    "service_api",
    "metrics_port",
    "metrics_address",
    "tracing",
    "drain_timeout",
    "redis_password_file",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "sentinel_username",
    "sentinel_password_file",
    "etcd_password_file",
    "curve_server_keys_dir",
    "max_queued_per_client",
    "max_queued_bytes",
}
SCALAR_NAMES = OPTION_NAMES - {"matchmaker_url"}


@pytest.fixture(autouse=True)
def _runtime_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([])
    return conf


# --- defaults ---------------------------------------------------------------


def test_settings_defaults(tmp_path):
    settings = Settings()
    assert settings.bind_address == "127.0.0.1"
    assert settings.host is None
    assert (settings.port_min, settings.port_max) == (0, 0)
    assert settings.timeout == 60.0
    assert settings.executor_size == 16
    assert settings.matchmaker_ttl == 30.0
    assert settings.lookup_cache_ttl == 5.0
    assert settings.max_message_size == 4 * 1024 * 1024
    assert settings.high_water_mark == 10000
    assert settings.linger == 1.0
    assert settings.connection_idle_timeout == 300.0
    assert settings.matchmaker == MatchmakerSpec("file", str(tmp_path / "zmqactors"), "zmq://")


def test_settings_are_frozen_and_hashable():
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.timeout = 1.0  # type: ignore[misc]
    assert hash(settings) == hash(Settings())


def test_default_file_directory_uses_xdg_runtime_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_file_directory() == str(tmp_path / "zmqactors")


@pytest.mark.parametrize("value", [None, "", "relative/dir"])
def test_default_file_directory_falls_back_to_tempdir(monkeypatch, tmp_path, value):
    if value is None:
        monkeypatch.delenv("XDG_RUNTIME_DIR")
    else:
        monkeypatch.setenv("XDG_RUNTIME_DIR", value)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert default_file_directory() == f"{tmp_path}/zmqactors-{os.getuid()}"


@pytest.mark.parametrize(
    ("bind_address", "host", "expected"),
    [
        ("127.0.0.1", None, "127.0.0.1"),
        ("10.0.0.5", "node-1.example", "node-1.example"),
        ("*", "node-1", "node-1"),
    ],
)
def test_advertised_host(bind_address, host, expected):
    assert Settings(bind_address=bind_address, host=host).advertised_host == expected


@pytest.mark.parametrize("wildcard", ["*", "0.0.0.0", "::"])  # noqa: S104 - not bound
def test_advertised_host_of_a_wildcard_is_the_host_name(monkeypatch, wildcard):
    monkeypatch.setattr("socket.gethostname", lambda: "this-machine")
    assert Settings(bind_address=wildcard).advertised_host == "this-machine"


def test_evolve_returns_a_validated_copy():
    settings = Settings()
    changed = settings.evolve(timeout=2, executor_size=4)
    assert (changed.timeout, changed.executor_size) == (2.0, 4)
    assert isinstance(changed.timeout, float)
    assert settings.timeout == 60.0
    with pytest.raises(ConfigurationError, match="executor_size"):
        settings.evolve(executor_size=0)
    with pytest.raises(TypeError):
        settings.evolve(no_such_option=1)


# --- bounds -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"executor_size": 0}, "option zmq.executor_size must be between 1 and 1024, got 0"),
        ({"executor_size": 1025}, "option zmq.executor_size must be between 1 and 1024, got 1025"),
        ({"timeout": 0.0}, "option zmq.timeout must be at least 0.001, got 0.0"),
        ({"timeout": -1}, "option zmq.timeout must be at least 0.001, got -1.0"),
        ({"timeout": float("inf")}, "option zmq.timeout must be finite, got inf"),
        ({"timeout": float("nan")}, "option zmq.timeout must be finite, got nan"),
        ({"matchmaker_ttl": 0.5}, "option zmq.matchmaker_ttl must be at least 1.0, got 0.5"),
        ({"lookup_cache_ttl": -0.1}, "option zmq.lookup_cache_ttl must be at least 0.0, got -0.1"),
        ({"max_message_size": 1023}, "option zmq.max_message_size must be between 1024 and"),
        ({"max_message_size": 2**30 + 1}, "option zmq.max_message_size must be between"),
        ({"high_water_mark": -1}, "option zmq.high_water_mark must be between 0 and"),
        ({"max_decoded_items": 15}, "option zmq.max_decoded_items must be between 16 and"),
        ({"max_decoded_depth": 1}, "option zmq.max_decoded_depth must be between 2 and"),
        ({"max_decoded_bytes": 0}, "option zmq.max_decoded_bytes must be between 1024 and"),
        ({"max_sockets": 65536}, "option zmq.max_sockets must be between 64 and 65535, got 65536"),
        ({"linger": 60.5}, "option zmq.linger must be between 0.0 and 60.0, got 60.5"),
        ({"port_min": -1}, "option zmq.port_min must be between 0 and 65535, got -1"),
        ({"port_max": 65536}, "option zmq.port_max must be between 0 and 65535, got 65536"),
        ({"port_min": 5000}, "port_min=5000 and port_max=0"),
        ({"port_max": 5000}, "port_min=0 and port_max=5000"),
        ({"port_min": 5001, "port_max": 5000}, "port_min=5001 and port_max=5000"),
        ({"executor_size": 2.0}, "option zmq.executor_size must be an integer, got 2.0"),
        ({"executor_size": True}, "option zmq.executor_size must be an integer, got True"),
        ({"timeout": "2"}, "option zmq.timeout must be a number, got '2'"),
        ({"bind_address": ""}, "option zmq.bind_address must be a non-empty address"),
        ({"bind_address": "a b"}, "got 'a b'"),
        ({"host": ""}, "option zmq.host must be a non-empty address"),
        ({"host": 7}, "option zmq.host must be a string, got 7"),
        ({"matchmaker": "zmq://"}, "matchmaker must be a MatchmakerSpec"),
    ],
)
def test_bounds_violations(changes, message):
    with pytest.raises(ConfigurationError) as info:
        Settings(**changes)
    assert message in str(info.value)


@pytest.mark.parametrize("name", sorted(OPTION_BOUNDS))
def test_bounds_themselves_are_accepted(name):
    bounds = OPTION_BOUNDS[name]
    for limit in (bounds.minimum, bounds.maximum):
        if limit is None:
            continue
        value = bounds.kind(limit)
        if name in {"port_min", "port_max"}:
            port = max(int(value), 1)
            assert getattr(Settings(port_min=port, port_max=port), name) == port
        else:
            assert getattr(Settings().evolve(**{name: value}), name) == value


def test_port_range():
    assert (Settings(port_min=1, port_max=65535).port_max) == 65535
    assert Settings(port_min=9000, port_max=9000).port_min == 9000


def test_matchmaker_spec_validation():
    with pytest.raises(ConfigurationError, match="kafka"):
        MatchmakerSpec("kafka", "", "x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="absolute"):
        MatchmakerSpec("file", "relative", "x")
    with pytest.raises(ConfigurationError, match="password"):
        MatchmakerSpec("memory", "", "x", "pw")
    assert "pw" not in repr(MatchmakerSpec("redis", "h:6379/0", "u", "pw"))


# --- oslo.config ------------------------------------------------------------


def test_list_opts_returns_every_option_in_group_zmq():
    [(group, opts)] = list_opts()
    assert group == "zmq"
    assert {opt.name for opt in opts} == OPTION_NAMES
    assert all(opt.help for opt in opts)


def test_list_opts_returns_copies():
    [(_, opts)] = list_opts()
    assert opts == list(ALL_OPTS)
    assert all(copied is not original for copied, original in zip(opts, ALL_OPTS, strict=True))
    opts[0].default = "changed"
    assert ALL_OPTS[0].default == "127.0.0.1"


def test_bounds_table_and_opts_agree():
    opts = {opt.name: opt for opt in ALL_OPTS}
    for name, bounds in OPTION_BOUNDS.items():
        opt = opts[name]
        expected_type = cfg.IntOpt if bounds.kind is int else cfg.FloatOpt
        assert type(opt) is expected_type, name
        assert getattr(opt.type, "min") == bounds.minimum, name  # noqa: B009 - untyped attribute
        assert getattr(opt.type, "max") == bounds.maximum, name  # noqa: B009 - untyped attribute
    numeric = {name for name, opt in opts.items() if isinstance(opt, cfg.IntOpt | cfg.FloatOpt)}
    assert numeric == set(OPTION_BOUNDS)


def test_settings_fields_and_opts_agree():
    hints = typing.get_type_hints(Settings)
    opts = {opt.name: opt for opt in ALL_OPTS}
    for field in dataclasses.fields(Settings):
        if field.name == "matchmaker":
            continue
        assert opts[field.name].default == field.default, field.name
        bounds = OPTION_BOUNDS.get(field.name)
        if bounds is not None:
            assert hints[field.name] is bounds.kind, field.name
    assert opts["matchmaker_url"].default == "zmq://"
    assert opts["matchmaker_url"].secret


def test_register_opts_is_idempotent():
    conf = cfg.ConfigOpts()
    register_opts(conf)
    register_opts(conf)
    conf([])
    register_opts(conf)
    assert conf.zmq.timeout == 60.0


def test_register_opts_rejects_a_conflicting_option():
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.StrOpt("timeout"), group="zmq")
    with pytest.raises(ConfigurationError, match="zmq"):
        register_opts(conf)


def test_from_conf_defaults(tmp_path):
    conf = cfg.ConfigOpts()
    conf([])
    assert Settings.from_conf(conf) == Settings()
    assert Settings.from_conf(conf).matchmaker.location == str(tmp_path / "zmqactors")


def test_from_conf_reads_overrides(conf):
    conf.set_override("timeout", 3.5, group="zmq")
    conf.set_override("executor_size", 2, group="zmq")
    conf.set_override("host", "node-7", group="zmq")
    conf.set_override("port_min", 6000, group="zmq")
    conf.set_override("port_max", 6010, group="zmq")
    conf.set_override("matchmaker_url", "zmq+redis://:pw@r1:7000/2", group="zmq")
    settings = Settings.from_conf(conf)
    assert settings.timeout == 3.5
    assert settings.executor_size == 2
    assert settings.advertised_host == "node-7"
    assert (settings.port_min, settings.port_max) == (6000, 6010)
    assert settings.matchmaker == MatchmakerSpec(
        "redis", "r1:7000/2", "zmq+redis://:***@r1:7000/2", "pw"
    )


def test_from_conf_url_query_overrides_options(conf):
    conf.set_override("timeout", 3.5, group="zmq")
    conf.set_override("linger", 2.0, group="zmq")
    conf.set_override("matchmaker_url", "zmq+memory://t?timeout=9", group="zmq")
    settings = Settings.from_conf(conf)
    assert (settings.timeout, settings.linger) == (9.0, 2.0)
    assert settings.matchmaker.kind == "memory"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("Yes", True), ("on", True), ("1", True), ("false", False), ("0", False)],
)
def test_send_tracebacks_is_off_by_default_and_a_switch_in_urls(value, expected):
    assert Settings().send_tracebacks is False
    assert parse_url("zmq://").send_tracebacks is False
    assert parse_url(f"zmq://?send_tracebacks={value}").send_tracebacks is expected


def test_send_tracebacks_refuses_what_is_not_a_switch():
    with pytest.raises(
        ConfigurationError, match="'send_tracebacks' must be true or false, got 'maybe'"
    ):
        parse_url("zmq://?send_tracebacks=maybe")
    with pytest.raises(
        ConfigurationError, match=r"zmq\.send_tracebacks must be true or false, got 1"
    ):
        Settings(send_tracebacks=1)  # type: ignore[arg-type]


def test_from_conf_reads_send_tracebacks(conf):
    assert Settings.from_conf(conf).send_tracebacks is False
    conf.set_override("send_tracebacks", override=True, group="zmq")
    assert Settings.from_conf(conf).send_tracebacks is True


def test_from_conf_bad_url(conf):
    conf.set_override("matchmaker_url", "zmq+redis://:pw@h/x", group="zmq")
    with pytest.raises(ConfigurationError, match=r"zmq\+redis://:\*\*\*@h/x"):
        Settings.from_conf(conf)


def test_from_conf_inconsistent_ports(conf):
    conf.set_override("port_min", 7000, group="zmq")
    with pytest.raises(ConfigurationError, match="port_min=7000 and port_max=0"):
        Settings.from_conf(conf)


def test_from_conf_out_of_bounds_value_in_config_file(tmp_path):
    config_file = tmp_path / "test.conf"
    config_file.write_text("[zmq]\nexecutor_size = 0\n")
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(["--config-file", str(config_file)])
    with pytest.raises(ConfigurationError, match=r"zmq\.executor_size"):
        Settings.from_conf(conf)


def test_overrides_do_not_leak_between_config_objects(conf):
    conf.set_override("timeout", 1.0, group="zmq")
    other = cfg.ConfigOpts()
    register_opts(other)
    other([])
    assert other.zmq.timeout == 60.0
    assert Settings.from_conf(other).timeout == 60.0


def test_from_conf_other_group():
    conf = cfg.ConfigOpts()
    conf([])
    settings = Settings.from_conf(conf, group="messaging")
    assert settings == Settings()
    assert conf.messaging.executor_size == 16
    assert "zmq" not in conf


def test_override_out_of_bounds_is_refused_by_oslo(conf):
    with pytest.raises(ValueError, match="1024"):
        conf.set_override("executor_size", 5000, group="zmq")


@pytest.mark.parametrize(
    ("name", "value"), [("max_queued_per_client", 0), ("max_queued_bytes", 100)]
)
def test_queue_bounds_refuse_values_below_their_minimum_naming_the_option(name, value):
    with pytest.raises(ConfigurationError, match=name):
        Settings(**{name: value})


def test_queue_bounds_have_safe_defaults_and_come_from_the_url():
    settings = Settings()
    assert (settings.max_queued_per_client, settings.max_queued_bytes) == (1000, 64 << 20)
    changed = parse_url("zmq+memory://q?max_queued_per_client=5&max_queued_bytes=4096")
    assert (changed.max_queued_per_client, changed.max_queued_bytes) == (5, 4096)
