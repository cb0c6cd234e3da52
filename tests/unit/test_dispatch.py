"""Tests of the Dispatcher: from a request body to an endpoint call and a reply body."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

import pytest
import structlog
import structlog.testing

import zmqactors
from tests.wire_helpers import make_request
from zmqactors import wire
from zmqactors.core.dispatch import Dispatcher, expose, exposed_methods, request_context
from zmqactors.core.stats import Stats
from zmqactors.wire import CallKind, ErrorKind, ErrorReply, Reply, Request

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.unit

MAX = 1 << 20
SERVER_TARGET = zmqactors.Target(topic="compute", server="node-1")


class Calculator:
    """A plain endpoint: public methods, private ones and non-method attributes."""

    limit = 10
    Nested = dict

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.contexts: list[dict[str, Any]] = []

    def add(self, a: int, b: int) -> int:
        self.calls.append(("add", {"a": a, "b": b}))
        return a + b

    def echo(self, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    def ping(self) -> str:
        return "pong"

    def whoami(self) -> dict[str, Any]:
        ctx = request_context()
        self.contexts.append(dict(ctx))
        return dict(ctx)

    def lookup_missing(self, key: str) -> None:
        self.calls.append(("lookup_missing", {"key": key}))
        raise KeyError(key)

    def unencodable(self) -> object:
        return object()

    def log(self, line: str) -> None:
        self.calls.append(("log", {"line": line}))

    def _secret(self) -> str:
        return "private"


class Versioned:
    """An endpoint that serves namespace ``ns`` at version 1.2."""

    target = zmqactors.Target("t", namespace="ns", version="1.2")

    def status(self) -> str:
        return "ok-1.2"


class BoomError(Exception):
    pass


def body_of(request: Request) -> bytes:
    return wire.encode(request)[1]


class Harness:
    def __init__(
        self,
        endpoints: list[object],
        target: zmqactors.Target = SERVER_TARGET,
        **options: Any,
    ) -> None:
        self.stats = Stats()
        self.dispatcher = Dispatcher(target, endpoints, MAX, self.stats, **options)

    def run(self, request: Request) -> wire.Message | None:
        out = self.dispatcher.handle(body_of(request))
        if out is None:
            return None
        assert isinstance(out, bytes)
        reply = wire.decode_body(out, MAX)
        assert reply.msg_id == request.msg_id
        return reply

    def call(self, method: str, **changes: Any) -> wire.Message | None:
        return self.run(make_request(method, **changes))


@pytest.fixture
def calc() -> Calculator:
    return Calculator()


@pytest.fixture
def harness(calc: Calculator) -> Harness:
    return Harness([calc])


def error_of(reply: wire.Message | None, kind: ErrorKind) -> ErrorReply:
    assert isinstance(reply, ErrorReply), reply
    assert reply.kind is kind, reply
    return reply


# -- calls and results ----------------------------------------------------------------


def test_call_returns_reply_with_result(harness, calc):
    request = make_request("add", args={"a": 2, "b": 40})
    reply = harness.run(request)
    assert reply == Reply(request.msg_id, 42)
    assert calc.calls == [("add", {"a": 2, "b": 40})]


def test_kwargs_are_passed_by_name(harness):
    args = {"x": [1, "two", b"3"], "y": {"nested": None}, "z": 1.5}
    reply = harness.call("echo", args=args)
    assert isinstance(reply, Reply)
    assert reply.result == args


def test_call_with_server_name_of_this_server_is_served(harness):
    reply = harness.call("ping", server="node-1")
    assert isinstance(reply, Reply)
    assert reply.result == "pong"


def test_wrong_arguments_are_a_remote_type_error(harness, calc):
    reply = error_of(harness.call("add", args={"a": 1}), ErrorKind.REMOTE)
    assert reply.exc_type == "builtins.TypeError"
    assert "b" in reply.message
    assert calc.calls == []


def test_second_endpoint_is_searched(calc):
    class Other:
        def only_here(self) -> str:
            return "other"

    harness = Harness([calc, Other()])
    reply = harness.call("only_here")
    assert isinstance(reply, Reply)
    assert reply.result == "other"


# -- request context ------------------------------------------------------------------


def test_request_context_inside_endpoint(harness, calc):
    context = {"user": "u1", "roles": ["admin"], "request_id": "req-7"}
    reply = harness.call("whoami", context=context)
    assert isinstance(reply, Reply)
    assert reply.result == context
    assert calc.contexts == [context]


def test_request_context_is_per_request_and_empty_outside(harness, calc):
    assert dict(request_context()) == {}
    harness.call("whoami", context={"user": "a"})
    assert dict(request_context()) == {}
    harness.call("whoami", context={})
    harness.call("whoami", context={"user": "b"})
    assert calc.contexts == [{"user": "a"}, {}, {"user": "b"}]
    assert dict(request_context()) == {}


def test_request_context_is_reset_after_endpoint_raises(harness):
    harness.call("lookup_missing", args={"key": "k"}, context={"user": "u1"})
    assert dict(request_context()) == {}


def test_request_context_is_exported():
    assert zmqactors.request_context is request_context


# -- endpoint errors -------------------------------------------------------------------


def test_endpoint_exception_becomes_remote_error_reply_without_a_traceback(harness):
    request = make_request("lookup_missing", args={"key": "k1"})
    with structlog.testing.capture_logs() as logs:
        reply = error_of(harness.run(request), ErrorKind.REMOTE)
    assert reply.exc_type == "builtins.KeyError"
    assert reply.message == "'k1'"
    assert reply.traceback == ""
    # The server keeps the traceback: logged with the message id.
    [logged] = [entry for entry in logs if entry["event"] == "call failed"]
    assert logged["msg_id"] == request.msg_id.hex()
    assert logged["method"] == "lookup_missing"
    assert logged["exc_info"] is True
    assert logged["log_level"] == "warning"


def test_send_tracebacks_sends_the_traceback(calc):
    harness = Harness([calc], send_tracebacks=True)
    reply = error_of(harness.call("lookup_missing", args={"key": "k1"}), ErrorKind.REMOTE)
    assert reply.message == "'k1'"
    assert "Traceback" in reply.traceback
    assert ", in lookup_missing\n" in reply.traceback
    assert "KeyError" in reply.traceback


def test_exception_type_is_qualified_with_its_module():
    class Raiser:
        def go(self) -> None:
            msg = "went wrong"
            raise BoomError(msg)

    reply = error_of(Harness([Raiser()], send_tracebacks=True).call("go"), ErrorKind.REMOTE)
    assert reply.exc_type == f"{__name__}.BoomError"
    assert reply.message == "went wrong"
    assert ", in go\n" in reply.traceback


def test_error_reply_maps_to_remote_error(harness):
    reply = error_of(harness.call("lookup_missing", args={"key": "k"}), ErrorKind.REMOTE)
    exc = wire.error_to_exception(reply)
    assert isinstance(exc, zmqactors.RemoteError)
    assert exc.exc_type == "builtins.KeyError"


def test_unencodable_result_becomes_error_reply(harness):
    reply = error_of(harness.call("unencodable"), ErrorKind.REMOTE)
    assert reply.exc_type == "builtins.TypeError"
    assert "object" in reply.message


def test_exception_message_that_cannot_be_encoded_still_gets_a_reply():
    class Raiser:
        def go(self) -> None:
            msg = "no such file b'\udcff'"  # e.g. an os.fsdecode()d file name
            raise ValueError(msg)

    reply = error_of(Harness([Raiser()]).call("go"), ErrorKind.REMOTE)
    assert reply.exc_type == "builtins.ValueError"


# -- what cannot be reached ---------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [
        "_secret",
        "__class__",
        "__init__",
        "__dict__",
        "__reduce__",
        "limit",
        "calls",
        "Nested",
        "missing",
        "",
        "add.__globals__",
        "1abc",
        "a b",
    ],
)
def test_unreachable_names_are_no_such_method(harness, calc, method):
    reply = error_of(harness.call(method), ErrorKind.NO_SUCH_METHOD)
    assert reply.exc_type == "zmqactors.errors.NoSuchMethod"
    assert isinstance(wire.error_to_exception(reply), zmqactors.NoSuchMethod)
    assert calc.calls == []


def test_no_such_method_names_the_method(harness):
    reply = error_of(harness.call("frobnicate"), ErrorKind.NO_SUCH_METHOD)
    assert "frobnicate" in reply.message


# -- namespaces and versions ----------------------------------------------------------------


@pytest.mark.parametrize("version", [None, "1", "1.0", "1.1", "1.2"])
def test_namespace_and_compatible_version_are_served(version):
    reply = Harness([Versioned()]).call("status", namespace="ns", version=version)
    assert isinstance(reply, Reply)
    assert reply.result == "ok-1.2"


@pytest.mark.parametrize("version", ["1.3", "2.0", "2", "0.9"])
def test_incompatible_version_is_unsupported(version):
    reply = error_of(
        Harness([Versioned()]).call("status", namespace="ns", version=version),
        ErrorKind.UNSUPPORTED_VERSION,
    )
    assert version in reply.message
    assert isinstance(wire.error_to_exception(reply), zmqactors.UnsupportedVersion)


@pytest.mark.parametrize("namespace", ["other", None])
def test_method_in_another_namespace_is_no_such_method(namespace):
    reply = error_of(
        Harness([Versioned()]).call("status", namespace=namespace, version="1.0"),
        ErrorKind.NO_SUCH_METHOD,
    )
    assert "status" in reply.message


def test_endpoint_without_target_serves_no_namespace(calc):
    reply = error_of(Harness([calc]).call("ping", namespace="ns"), ErrorKind.NO_SUCH_METHOD)
    assert "ns" in reply.message


def test_newer_endpoint_of_the_same_namespace_is_chosen():
    class Old:
        target = zmqactors.Target("t", namespace="ns", version="1.0")

        def status(self) -> str:
            return "old"

    class New:
        target = zmqactors.Target("t", namespace="ns", version="2.1")

        def status(self) -> str:
            return "new"

    harness = Harness([Old(), New()])
    for version, expected in (("1.0", "old"), ("2.0", "new"), ("2.1", "new")):
        reply = harness.call("status", namespace="ns", version=version)
        assert isinstance(reply, Reply)
        assert reply.result == expected
    error_of(harness.call("status", namespace="ns", version="2.2"), ErrorKind.UNSUPPORTED_VERSION)


# -- misrouted requests --------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"topic": "network"},
        {"topic": "compute.node-1"},
        {"exchange": "other"},
        {"server": "node-2"},
    ],
    ids=["topic", "dotted-topic", "exchange", "server"],
)
def test_request_for_another_target_is_not_served(harness, calc, changes):
    reply = error_of(harness.call("add", args={"a": 1, "b": 2}, **changes), ErrorKind.NOT_SERVED)
    assert harness.stats.snapshot().get("misrouted") == 1
    assert calc.calls == []
    assert isinstance(wire.error_to_exception(reply), zmqactors.NoRespondersError)
    harness.call("add", args={"a": 1, "b": 2}, **changes)
    assert harness.stats.snapshot()["misrouted"] == 2


def test_served_request_counts_nothing(harness):
    harness.call("ping")
    assert harness.stats.snapshot().get("misrouted", 0) == 0
    assert harness.stats.snapshot().get("protocol_errors", 0) == 0


def test_server_without_name_refuses_requests_naming_a_server(calc):
    harness = Harness([calc], target=zmqactors.Target(topic="compute"))
    error_of(harness.call("ping", server="node-1"), ErrorKind.NOT_SERVED)
    assert isinstance(harness.call("ping"), Reply)


def test_exchange_named_default_is_served_by_a_target_without_exchange(harness):
    assert isinstance(harness.call("ping", exchange="default"), Reply)


# -- casts ---------------------------------------------------------------------------------


def test_cast_runs_and_returns_none(harness, calc):
    out = harness.dispatcher.handle(
        body_of(make_request("log", kind=CallKind.CAST, args={"line": "hi"}))
    )
    assert out is None
    assert calc.calls == [("log", {"line": "hi"})]


@pytest.mark.parametrize(
    ("method", "changes"),
    [
        ("lookup_missing", {"args": {"key": "k"}}),
        ("missing", {}),
        ("_secret", {}),
        ("unencodable", {}),
        ("ping", {"topic": "other"}),
        ("status", {"namespace": "ns", "version": "9.0"}),
    ],
)
def test_cast_returns_none_even_when_it_fails(harness, method, changes):
    out = harness.dispatcher.handle(body_of(make_request(method, kind=CallKind.CAST, **changes)))
    assert out is None


def test_failing_cast_still_ran_the_endpoint(harness, calc):
    harness.dispatcher.handle(
        body_of(make_request("lookup_missing", kind=CallKind.CAST, args={"key": "k"}))
    )
    assert calc.calls == [("lookup_missing", {"key": "k"})]


# -- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00",
        b"garbage",
        b"\x9c" + b"\xff" * 20,
        wire.encode(make_request("ping", msg_id=b"short"))[1],
        b"\x91" * 100_000 + b"\xc0",
    ],
    ids=["empty", "nul", "text", "bad-array", "short-msg-id", "deep"],
)
def test_malformed_body_is_dropped_and_counted(harness, body):
    assert harness.dispatcher.handle(body) is None
    assert harness.stats.snapshot()["protocol_errors"] == 1
    assert isinstance(harness.call("ping"), Reply)


def test_oversized_body_is_dropped_and_counted(calc):
    stats = Stats()
    dispatcher = Dispatcher(SERVER_TARGET, [calc], 64, stats)
    body = body_of(make_request("echo", args={"blob": b"x" * 100}))
    assert dispatcher.handle(body) is None
    assert stats.snapshot()["protocol_errors"] == 1


@pytest.mark.parametrize(
    "message",
    [
        Reply(b"\x01" * 16, 3),
        ErrorReply(b"\x01" * 16, ErrorKind.REMOTE, "builtins.KeyError", "k"),
    ],
    ids=["reply", "error-reply"],
)
def test_reply_sent_to_a_server_is_dropped_and_counted(harness, message):
    assert harness.dispatcher.handle(wire.encode(message)[1]) is None
    assert harness.stats.snapshot()["protocol_errors"] == 1


# -- what a server exposes -------------------------------------------------------------------


class Helper:
    """A callable object: a class attribute that is callable but no method."""

    def __call__(self) -> str:
        return "helper ran"


class Base:
    def inherited(self) -> str:
        return "base"

    def hidden_below(self) -> str:
        return "base"


class Exposing(Base):
    """An endpoint with every kind of attribute an attacker might name."""

    helper = Helper()
    partial = functools.partial(str, "partial ran")
    hidden_below = None  # a subclass's non-method hides the base's method

    def __init__(self) -> None:
        self.getters_run: list[str] = []
        self.attribute = lambda: "instance attribute ran"
        # An instance attribute cannot shadow a method either.
        self.ping = lambda: "shadow ran"

    def ping(self) -> str:  # type: ignore[no-redef]
        return "pong"

    @property
    def secret(self) -> Callable[[], str]:
        self.getters_run.append("secret")
        return lambda: "property ran"

    @functools.cached_property
    def cached(self) -> Callable[[], str]:
        self.getters_run.append("cached")
        return lambda: "cached property ran"

    @staticmethod
    def static() -> str:
        return "static"

    @classmethod
    def klass(cls) -> str:
        return cls.__name__

    @functools.cache  # noqa: B019 - the endpoint lives as long as the server
    def memo(self) -> str:
        return "memo"

    @expose
    def chosen(self) -> str:
        return "chosen"

    @expose
    @staticmethod
    def chosen_static() -> str:
        return "chosen static"


def result_of(reply: wire.Message | None) -> object:
    assert isinstance(reply, Reply), reply
    return reply.result


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("ping", "pong"),
        ("inherited", "base"),
        ("static", "static"),
        ("klass", "Exposing"),
        ("memo", "memo"),
        ("chosen", "chosen"),
        ("chosen_static", "chosen static"),
    ],
)
def test_methods_of_the_class_and_its_bases_are_served(method, expected):
    assert result_of(Harness([Exposing()]).call(method)) == expected


@pytest.mark.parametrize(
    "method",
    [
        "attribute",  # a callable instance attribute
        "helper",  # a callable class attribute that is no function
        "partial",
        "hidden_below",
        "secret",  # properties: the getter must not run
        "cached",
        "getters_run",
        "__init_subclass__",  # object's helpers
        "__reduce__",
        "__reduce_ex__",
        "__subclasshook__",
        "__getattribute__",
        "__setattr__",
        "__class__",
    ],
)
def test_what_is_no_method_is_not_served_and_no_getter_runs(method):
    endpoint = Exposing()
    harness = Harness([endpoint])
    error_of(harness.call(method), ErrorKind.NO_SUCH_METHOD)
    assert endpoint.getters_run == []


def test_decorated_exposes_only_the_methods_marked_with_expose():
    harness = Harness([Exposing()], exposed="decorated")
    assert result_of(harness.call("chosen")) == "chosen"
    assert result_of(harness.call("chosen_static")) == "chosen static"
    for method in ("ping", "inherited", "static", "memo", "secret"):
        error_of(harness.call(method), ErrorKind.NO_SUCH_METHOD)


def test_exposed_methods_lists_exactly_the_methods():
    endpoint = Exposing()
    assert sorted(exposed_methods(endpoint, "methods")) == [
        "chosen",
        "chosen_static",
        "inherited",
        "klass",
        "memo",
        "ping",
        "static",
    ]
    assert sorted(exposed_methods(endpoint, "decorated")) == ["chosen", "chosen_static"]
    assert endpoint.getters_run == []


def test_expose_refuses_what_can_never_be_called():
    with pytest.raises(TypeError, match="expose"):
        expose(property(lambda _: 1))
    with pytest.raises(TypeError, match="expose"):
        expose(Helper)
    with pytest.raises(ValueError, match="'_hidden' starts with '_'"):

        @expose
        def _hidden() -> None: ...


@pytest.mark.parametrize("exposed", ["all", "", None, True])
def test_an_unknown_exposure_names_the_value(exposed):
    with pytest.raises(ValueError, match=f"invalid exposed {exposed!r}"):
        Harness([Exposing()], exposed=exposed)


def test_expose_is_exported_lazily():
    assert zmqactors.expose is expose
    assert "expose" in zmqactors.__all__


# -- deadlines on the server ------------------------------------------------------------


@pytest.mark.parametrize("kind", [CallKind.CALL, CallKind.ACKED_CAST])
def test_a_call_queued_past_its_timeout_is_dropped_unrun_and_counted(harness, calc, kind):
    request = make_request("log", args={"line": "late"}, kind=kind, timeout=0.5)
    arrived = time.monotonic() - 0.6
    assert harness.dispatcher.handle(body_of(request), b"client", arrived) is None
    assert calc.calls == []
    assert harness.stats.snapshot() == {"expired_dropped": 1}


def test_a_call_within_its_timeout_and_a_plain_cast_run_whatever_their_wait(harness, calc):
    call = make_request("log", args={"line": "on time"}, timeout=5.0)
    assert harness.dispatcher.handle(body_of(call), b"client", time.monotonic() - 1.0) is not None
    cast = make_request("log", args={"line": "cast"}, kind=CallKind.CAST)
    harness.dispatcher.handle(body_of(cast), b"client", time.monotonic() - 3600.0)
    untimed = make_request("log", args={"line": "no timeout"}, timeout=None)
    harness.dispatcher.handle(body_of(untimed), b"client", time.monotonic() - 3600.0)
    assert [args["line"] for _, args in calc.calls] == ["on time", "cast", "no timeout"]
    assert "expired_dropped" not in harness.stats.snapshot()
