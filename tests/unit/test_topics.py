"""Tests of zmqactors.topics: the Target value object and the keys derived from it."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

import zmqactors
from zmqactors.topics import (
    DEFAULT_EXCHANGE,
    Target,
    matchmaker_key,
    validate_name,
    version_compatible,
)

pytestmark = pytest.mark.unit

NAME_FIELDS = ("topic", "server", "exchange", "namespace")
NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@:#+=~-"

names = st.text(alphabet=NAME_ALPHABET, min_size=1, max_size=40)


def make(field: str, value: object) -> Target:
    """A Target with ``value`` in ``field`` (topic filled in when it is another field)."""
    kwargs: dict[str, object] = {"topic": "compute", field: value}
    return Target(**kwargs)  # type: ignore[arg-type]


# -- frozen, hashable, equal by value ---------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("topic", "other"),
        ("server", "node-2"),
        ("fanout", True),
        ("exchange", "ex"),
        ("namespace", "ns"),
        ("version", "2.0"),
    ],
)
def test_target_is_frozen(field, value):
    target = Target(topic="compute", server="node-1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(target, field, value)
    assert target == Target(topic="compute", server="node-1")


def test_target_rejects_new_attributes():
    target = Target(topic="compute")
    with pytest.raises((AttributeError, TypeError)):
        target.extra = 1  # type: ignore[attr-defined]


def test_equal_targets_are_one_dict_key_and_set_member():
    first = Target(topic="compute", server="node-1", exchange="nova", version="1.2")
    second = Target(topic="compute", server="node-1", exchange="nova", version="1.2")
    assert first is not second
    assert first == second
    assert hash(first) == hash(second)
    table = {first: "a"}
    table[second] = "b"
    assert table == {first: "b"}
    assert len({first, second}) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"topic": "compute2"},
        {"server": "node-2"},
        {"server": None},
        {"exchange": "other"},
        {"namespace": "ns"},
        {"version": "1.3"},
    ],
)
def test_targets_differing_in_one_field_are_different_keys(changes):
    base = Target(topic="compute", server="node-1", exchange="nova", version="1.2")
    other = dataclasses.replace(base, **changes)
    assert other != base
    assert len({base, other}) == 2


def test_fanout_is_part_of_equality():
    assert Target(topic="compute", fanout=True) != Target(topic="compute")


def test_target_is_reexported_at_top_level():
    assert zmqactors.Target is Target


# -- validation of names -------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "compute",
        "compute.node-1",
        "host@backend#pool",
        "ns:svc",
        "a+b=c~d_e",
        "x",
        "a" * 255,
        "1.2.3",
    ],
)
@pytest.mark.parametrize("field", NAME_FIELDS)
def test_valid_names_are_accepted_in_every_field(field, value):
    target = make(field, value)
    assert getattr(target, field) == value
    assert validate_name(field, value) == value


def test_dotted_topic_and_at_server_are_kept_whole():
    target = Target(topic="compute.node-1", server="host@backend#pool")
    assert target.topic == "compute.node-1"
    assert target.server == "host@backend#pool"
    assert matchmaker_key(target) == "default/compute.node-1"


BAD_NAMES = [
    pytest.param("", id="empty"),
    pytest.param("two words", id="space"),
    pytest.param("a/b", id="slash"),
    pytest.param("line\nbreak", id="newline"),
    pytest.param("trailing\n", id="trailing-newline"),
    pytest.param("tab\there", id="tab"),
    pytest.param("nul\x00", id="nul"),
    pytest.param("a" * 256, id="256-chars"),
    pytest.param("caf\u00e9", id="non-ascii-latin"),
    pytest.param("\u4e2d\u6587", id="non-ascii-cjk"),
    pytest.param("\uff11", id="fullwidth-digit"),
]


@pytest.mark.parametrize("value", BAD_NAMES)
@pytest.mark.parametrize("field", NAME_FIELDS)
def test_bad_names_raise_value_error_naming_field_and_value(field, value):
    with pytest.raises(ValueError, match=field) as info:
        make(field, value)
    assert repr(value) in str(info.value)
    with pytest.raises(ValueError, match=field):
        validate_name(field, value)


@pytest.mark.parametrize("value", [1, 1.5, b"compute", ["compute"], object()])
@pytest.mark.parametrize("field", NAME_FIELDS)
def test_non_string_names_raise_type_error(field, value):
    with pytest.raises(TypeError, match=field):
        make(field, value)


def test_topic_none_is_a_type_error():
    with pytest.raises(TypeError, match="topic"):
        Target(topic=None)  # type: ignore[arg-type]


@given(st.text(min_size=1, max_size=300))
def test_any_name_is_either_accepted_whole_or_refused(value):
    valid = len(value) <= 255 and all(c in NAME_ALPHABET for c in value)
    if valid:
        assert Target(topic=value).topic == value
    else:
        with pytest.raises(ValueError, match="topic"):
            Target(topic=value)


# -- version and fanout ------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "1.0", "1.2", "10.20", "0.1", "123456.654321"])
def test_valid_versions(version):
    assert Target(topic="t", version=version).version == version


@pytest.mark.parametrize(
    "version",
    ["", "1.", ".1", "1.2.3", "v1", "1.a", "one", " 1.0", "1.0 ", "1234567", "-1", "1,2", "1.0\n"],
)
def test_bad_versions_raise_value_error_naming_field_and_value(version):
    with pytest.raises(ValueError, match="version") as info:
        Target(topic="t", version=version)
    assert repr(version) in str(info.value)


def test_non_string_version_is_a_type_error():
    with pytest.raises(TypeError, match="version"):
        Target(topic="t", version=1.2)  # type: ignore[arg-type]


def test_fanout_with_server_is_refused():
    with pytest.raises(ValueError, match="fanout") as info:
        Target(topic="compute", server="node-1", fanout=True)
    assert "node-1" in str(info.value)


def test_fanout_without_server_is_fine():
    assert Target(topic="compute", fanout=True).fanout is True


@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_fanout_must_be_a_bool(value):
    with pytest.raises(TypeError, match="fanout"):
        Target(topic="compute", fanout=value)  # type: ignore[arg-type]


# -- evolve and str ------------------------------------------------------------------


def test_evolve_returns_a_changed_copy_and_keeps_the_original():
    base = Target(topic="compute", exchange="nova")
    changed = base.evolve(server="node-1", version="1.1")
    assert changed == Target(topic="compute", exchange="nova", server="node-1", version="1.1")
    assert base == Target(topic="compute", exchange="nova")


@pytest.mark.parametrize(
    ("changes", "error", "word"),
    [
        ({"server": "bad name"}, ValueError, "server"),
        ({"topic": "a/b"}, ValueError, "topic"),
        ({"version": "x"}, ValueError, "version"),
        ({"exchange": 5}, TypeError, "exchange"),
        ({"fanout": True}, ValueError, "fanout"),
    ],
)
def test_evolve_validates(changes, error, word):
    base = Target(topic="compute", server="node-1")
    with pytest.raises(error, match=word):
        base.evolve(**changes)


def test_evolve_to_fanout_after_dropping_server_works():
    base = Target(topic="compute", server="node-1")
    assert base.evolve(server=None, fanout=True) == Target(topic="compute", fanout=True)


@pytest.mark.parametrize(
    ("target", "text"),
    [
        (Target(topic="compute"), "default/compute"),
        (Target(topic="compute", server="node-1"), "default/compute server=node-1"),
        (
            Target(topic="t", exchange="ex", fanout=True, namespace="ns", version="1.2"),
            "ex/t fanout namespace=ns version=1.2",
        ),
        (
            Target(topic="compute.node-1", server="host@backend#pool"),
            "default/compute.node-1 server=host@backend#pool",
        ),
    ],
)
def test_str(target, text):
    assert str(target) == text


def test_exchange_name_defaults():
    assert Target(topic="t").exchange_name == DEFAULT_EXCHANGE == "default"
    assert Target(topic="t", exchange="nova").exchange_name == "nova"


# -- matchmaker keys -------------------------------------------------------------------


def test_matchmaker_key_leaves_out_server_and_call_options():
    plain = Target(topic="compute", exchange="nova")
    assert matchmaker_key(plain) == "nova/compute"
    for variant in (
        plain.evolve(server="node-1"),
        plain.evolve(server="host@backend#pool"),
        plain.evolve(fanout=True),
        plain.evolve(namespace="ns", version="2.1"),
    ):
        assert matchmaker_key(variant) == matchmaker_key(plain)


def test_default_exchange_is_the_exchange_named_default():
    default = Target(topic="t", exchange="default")
    assert matchmaker_key(Target(topic="t")) == matchmaker_key(default)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a.b", "c"), ("a", "b.c")),
        (("a", "b.c"), ("a.b", "c")),
        (("x", "compute"), ("y", "compute")),
        (("nova", "compute"), ("nova", "compute.node-1")),
        (("a@b", "c"), ("a", "b@c")),
    ],
)
def test_distinct_targets_have_distinct_keys(first, second):
    one = Target(exchange=first[0], topic=first[1])
    two = Target(exchange=second[0], topic=second[1])
    assert matchmaker_key(one) != matchmaker_key(two)


@given(
    st.tuples(names, names),
    st.tuples(names, names),
    st.one_of(st.none(), names),
    st.one_of(st.none(), names),
)
def test_key_equality_iff_exchange_topic_equality(first, second, server1, server2):
    one = Target(exchange=first[0], topic=first[1], server=server1)
    two = Target(exchange=second[0], topic=second[1], server=server2)
    assert (matchmaker_key(one) == matchmaker_key(two)) == (first == second)


# -- version compatibility ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("served", "requested", "expected"),
    [
        (None, None, True),
        ("1.0", None, True),
        ("7.3", None, True),
        (None, "1.0", True),
        (None, "1", True),
        (None, "1.1", False),
        (None, "2.0", False),
        ("1.2", "1.0", True),
        ("1.2", "1.1", True),
        ("1.2", "1.2", True),
        ("1.2", "1.3", False),
        ("1", "1.0", True),
        ("1.0", "1", True),
        ("2", "2.0", True),
        ("2.0", "1.0", False),
        ("1.5", "2.0", False),
        ("2.5", "1.1", False),
        ("10.0", "1.0", False),
        ("1.10", "1.9", True),
        ("1.9", "1.10", False),
        ("0.1", "0.1", True),
        ("0.0", "0.1", False),
    ],
)
def test_version_compatible(served, requested, expected):
    assert version_compatible(served, requested) is expected
