"""Tests of transport URL parsing: zmqactors.urls, through options.parse_url."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqactors import urls
from zmqactors.errors import ConfigurationError, MessagingError
from zmqactors.options import OPTION_BOUNDS, MatchmakerSpec, Settings, parse_url

pytestmark = pytest.mark.unit

# Every option but matchmaker_url is also a query parameter.
SCALAR_NAMES = {field for field in Settings.__dataclass_fields__ if field != "matchmaker"}


@pytest.fixture(autouse=True)
def _runtime_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))


def _error(url: object) -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_url(url)  # type: ignore[arg-type]
    return str(info.value)


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
    assert (spec.username, spec.tls) == (None, False)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("zmq+rediss://h", ("redis", "h:6379/0", None, None, True)),
        ("zmq+rediss://alice@h:6380/1", ("redis", "h:6380/1", "alice", None, True)),
        ("zmq+rediss://alice:pw@h", ("redis", "h:6379/0", "alice", "pw", True)),
        ("zmq+redis://alice:p%40w@h", ("redis", "h:6379/0", "alice", "p@w", False)),
        ("zmq+rediss://a%2Fb@h", ("redis", "h:6379/0", "a/b", None, True)),
        ("zmq+sentinels://alice@s1,s2/m", ("sentinel", "s1:26379,s2:26379/m", "alice", None, True)),
        ("zmq+sentinel://alice:pw@s1/m", ("sentinel", "s1:26379/m", "alice", "pw", False)),
    ],
)
def test_tls_and_acl_user_parse_to_spec(url, expected):
    spec = parse_url(url).matchmaker
    assert (spec.kind, spec.location, spec.username, spec.password, spec.tls) == expected
    assert ":pw@" not in spec.url


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("zmq+rediss://alice:@h", "password after ':' is empty"),
        ("zmq+rediss://@h", "user name before '@' is empty"),
        ("zmq+rediss://a%0Ab@h", "control characters"),
        ("zmq+file://alice@/tmp/x", "takes no user name"),
    ],
)
def test_bad_user_information_is_refused(url, fragment):
    assert fragment in _error(url)


@pytest.mark.parametrize(
    ("kind", "changes"),
    [("file", {"username": "alice"}), ("memory", {"tls": True}), ("memory", {"password": "pw"})],
)
def test_spec_refuses_credentials_for_local_backends(tmp_path, kind, changes):
    location = str(tmp_path) if kind == "file" else "x"
    with pytest.raises(ConfigurationError, match="takes no"):
        MatchmakerSpec(kind, location, "zmq://", **changes)


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
        "zmq+redis://user:hunter2@h/x",
        "zmq+redis://hunter2@h/x",
        "zmq+rediss://user:hunter2@h?timeot=1",
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
    elif name in {"send_tracebacks", "service_api", "tracing"}:
        url, expected = f"zmq://?{name}=true", True
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
    assert message.startswith(f"invalid transport URL {urls.redact(url)!r}: ")
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
