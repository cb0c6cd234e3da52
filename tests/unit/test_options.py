"""Tests of zmqactors.options: opts, Settings validation and transport URL parsing."""

from __future__ import annotations

import dataclasses
import os
import typing
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st
from oslo_config import cfg

from zmqactors import options
from zmqactors.errors import ConfigurationError, MessagingError
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
    "high_water_mark",
    "linger",
    "handshake_timeout",
    "curve_secret_key_file",
    "curve_public_keys_dir",
    "curve_server_keys_dir",
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


def _error(url: object) -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_url(url)  # type: ignore[arg-type]
    return str(info.value)


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


# --- schemes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind", "location", "password"),
    [
        ("zmq+memory://", "memory", "", None),
        ("zmq+memory://bus-1", "memory", "bus-1", None),
        ("zmq+file:///var/run/zmq", "file", "/var/run/zmq", None),
        ("zmq+file:///dir%20with%20space", "file", "/dir with space", None),
        ("zmq+redis://redis.example", "redis", "redis.example:6379/0", None),
        ("zmq+redis://127.0.0.1:6380/3", "redis", "127.0.0.1:6380/3", None),
        ("zmq+redis://[::1]/2", "redis", "[::1]:6379/2", None),
        ("zmq+redis://:s3cret@h:7000/", "redis", "h:7000/0", "s3cret"),
        ("zmq+redis://:p%40ss%3Aw@h", "redis", "h:6379/0", "p@ss:w"),
        ("zmq+sentinel://s1:26380,s2/mymaster", "sentinel", "s1:26380,s2:26379/mymaster", None),
        ("zmq+sentinel://:pw@s1/master", "sentinel", "s1:26379/master", "pw"),
    ],
)
def test_scheme_parses_to_spec(url, kind, location, password):
    spec = parse_url(url).matchmaker
    assert (spec.kind, spec.location, spec.password) == (kind, location, password)


def test_zmq_scheme_is_the_default_file_backend(tmp_path):
    spec = parse_url("zmq://").matchmaker
    assert spec == MatchmakerSpec("file", str(tmp_path / "zmqactors"), "zmq://")
    assert spec == Settings().matchmaker


def test_scheme_is_case_insensitive():
    assert parse_url("ZMQ+Memory://x").matchmaker.kind == "memory"


def test_parse_url_keeps_the_base_options():
    base = Settings(timeout=5.0, executor_size=2)
    settings = parse_url("zmq+memory://?executor_size=3", base)
    assert (settings.timeout, settings.executor_size) == (5.0, 3)
    assert settings.matchmaker.kind == "memory"


# --- password redaction -----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("zmq+redis://:hunter2@h:1/0", "zmq+redis://:***@h:1/0"),
        ("zmq+sentinel://:hunter2@a,b/m?timeout=2", "zmq+sentinel://:***@a,b/m?timeout=2"),
        ("zmq+redis://h/0", "zmq+redis://h/0"),
    ],
)
def test_password_is_redacted_in_url(url, safe):
    spec = parse_url(url).matchmaker
    assert spec.url == safe
    assert "hunter2" not in repr(spec)
    assert "hunter2" not in repr(parse_url(url))


@pytest.mark.parametrize(
    "url",
    [
        "zmq+redis://:hunter2@h/notadb",
        "zmq+redis://:hunter2@h?timeot=1",
        "zmq+redis://:hunter2@[::1",
        "zmq+redis://user:hunter2@h",
        "zmq+redis://hunter2@h",
        "zmq+memory://:hunter2@x",
        "zmq+sentinel://:hunter2@a:99999/m",
    ],
)
def test_password_is_redacted_in_errors(url):
    with pytest.raises(ConfigurationError) as info:
        parse_url(url)
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)
    # No chained exception may carry the raw URL into a logged traceback.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@given(secret=st.text(min_size=1, max_size=30))
def test_any_password_round_trips_and_is_redacted(secret):
    url = f"zmq+redis://:{urllib.parse.quote(secret, safe='')}@host:1/0"
    spec = parse_url(url).matchmaker
    assert spec.password == secret
    assert spec.url == "zmq+redis://:***@host:1/0"


# --- query parameters -------------------------------------------------------


def test_query_overrides_with_type_conversion():
    settings = parse_url(
        "zmq://?timeout=2&executor_size=4&bind_address=0.0.0.0&host=node-1"
        "&port_min=5000&port_max=5100&linger=0&max_message_size=2048"
        "&high_water_mark=0&matchmaker_ttl=1.5&lookup_cache_ttl=0"
    )
    assert settings.timeout == 2.0
    assert isinstance(settings.timeout, float)
    assert settings.executor_size == 4
    assert isinstance(settings.executor_size, int)
    assert settings.bind_address == "0.0.0.0"  # noqa: S104 - not bound
    assert settings.host == "node-1"
    assert (settings.port_min, settings.port_max) == (5000, 5100)
    assert settings.linger == 0.0
    assert settings.max_message_size == 2048
    assert settings.high_water_mark == 0
    assert settings.matchmaker_ttl == 1.5
    assert settings.lookup_cache_ttl == 0.0
    assert settings.matchmaker.kind == "file"


@pytest.mark.parametrize("name", sorted(SCALAR_NAMES))
def test_every_scalar_option_is_a_query_parameter(name):
    bounds = OPTION_BOUNDS.get(name)
    value = "node-1" if bounds is None else str(bounds.kind(bounds.minimum or 0))
    if name in {"port_min", "port_max"}:
        url = "zmq://?port_min=1&port_max=1"
        expected: object = 1
    else:
        url = f"zmq://?{name}={value}"
        expected = value if bounds is None else bounds.kind(value)
    assert getattr(parse_url(url), name) == expected


def test_query_values_are_percent_decoded():
    assert parse_url("zmq://?bind_address=%3A%3A1").bind_address == "::1"


def test_float_exponent_is_accepted():
    assert parse_url("zmq://?timeout=1e%2B2").timeout == 100.0
    assert parse_url("zmq://?timeout=1e+2").timeout == 100.0


# --- errors -----------------------------------------------------------------


def test_unknown_parameter_names_the_url_and_lists_known_ones():
    message = _error("zmq://?timeot=2")
    assert message.startswith("invalid transport URL 'zmq://?timeot=2': unknown parameter 'timeot'")
    assert "known: bind_address, " in message
    for name in SCALAR_NAMES:
        assert name in message


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("zmq://?timeout=abc", ["timeout", "'abc'", "number"]),
        ("zmq://?timeout=nan", ["timeout", "'nan'"]),
        ("zmq://?timeout=1e999", ["timeout", "finite"]),
        ("zmq://?executor_size=2.5", ["executor_size", "'2.5'", "integer"]),
        ("zmq://?executor_size=1_0", ["executor_size", "'1_0'"]),
        ("zmq://?executor_size=", ["executor_size", "''"]),
        ("zmq://?timeout=1&timeout=2", ["timeout", "more than once"]),
        ("zmq://?timeout", ["'timeout'", "NAME=VALUE"]),
        ("zmq://?timeout=1&", ["NAME=VALUE"]),
        ("zmq://?host=", ["zmq.host", "''"]),
        ("zmq://x", ["zmq://", "'x'"]),
        ("zmq:///path", ["zmq://", "'/path'"]),
        ("zmq://#frag", ["fragment"]),
        ("amqp://guest@host", ["unknown scheme 'amqp'", "zmq+redis"]),
        ("zmq+kafka://h", ["unknown scheme 'zmq+kafka'"]),
        ("127.0.0.1:6379", ["missing scheme"]),
        ("", ["missing scheme"]),
        ("zmq:/x", ["missing scheme"]),
        ("zmq:// ", ["printable ASCII"]),
        ("zmq://\n?timeout=2", ["printable ASCII"]),
        ("zmq+memory://nämé", ["printable ASCII"]),
        ("zmq+memory://x/y", ["zmq+memory", "'/y'"]),
        ("zmq+file://", ["missing directory"]),
        ("zmq+file://relative/dir", ["zmq+file", "'relative'", "ABSOLUTE"]),
        ("zmq+file:///a%00b", ["NUL"]),
        ("zmq+redis://", ["missing host"]),
        ("zmq+redis://h/db", ["database", "'db'"]),
        ("zmq+redis://h/-1", ["database", "'-1'"]),
        ("zmq+redis://h/0/x", ["database", "'0/x'"]),
        ("zmq+redis://h:0", ["port", "got 0"]),
        ("zmq+redis://h:70000", ["port", "got 70000"]),
        ("zmq+redis://h:port", ["HOST:PORT", "'h:port'"]),
        ("zmq+redis://h:", ["HOST:PORT", "'h:'"]),
        ("zmq+redis://[::1", ["IPv6"]),
        ("zmq+redis://:@h", ["password", "empty", ":***@h"]),
        ("amqp://guest@host", ["'amqp://***@host'"]),
        ("zmq+sentinel://s1,s2", ["master", "''"]),
        ("zmq+sentinel://s1/", ["master"]),
        ("zmq+sentinel://s1/a/b", ["master", "'/a/b'"]),
        ("zmq+sentinel://s1,,s2/m", ["HOST:PORT", "''"]),
    ],
)
def test_bad_url_raises_configuration_error_naming_the_problem(url, fragments):
    message = _error(url)
    assert message.startswith(f"invalid transport URL {options._redact(url)!r}: ")
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("url", [None, 42, b"zmq://", ["zmq://"]])
def test_non_string_url(url):
    message = _error(url)
    assert type(url).__name__ in message


def test_configuration_error_is_also_a_value_error():
    with pytest.raises(ValueError, match="timeot"):
        parse_url("zmq://?timeot=1")
    with pytest.raises(MessagingError):
        parse_url("zmq://?timeot=1")


@given(st.text(max_size=60))
def test_arbitrary_text_gives_settings_or_configuration_error(text):
    for url in (text, f"zmq://{text}", f"zmq+redis://{text}", f"zmq://?{text}"):
        try:
            settings = parse_url(url)
        except ConfigurationError:
            continue
        assert isinstance(settings, Settings)


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
