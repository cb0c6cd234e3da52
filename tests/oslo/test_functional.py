"""oslo.messaging's own functional tests, run against ``zmq://``, ``zmq+redis://`` and ``zmq+etcd://``.

The test cases are oslo.messaging's (``oslo_messaging/tests/functional``:
``CallTestCase``, ``CastTestCase``, ``NotifyTestCase`` and the logging-handler
scenarios), unchanged; this module only makes one subclass per case and
backend (``zmq_backend`` picks the transport URL, see conftest.py) and expands
the logging cases' test scenarios, which pytest does not do by itself.

``MetricsTestCase`` runs on ``zmq://`` (its collector process needs
oslo.metrics, in the test extra, and fixed port 3000). Left out:
``test_rabbitmq.py`` (RabbitMQ clustering). Skipped by the suite itself, as
specific to other drivers: ``test_mandatory_call`` (``rabbit://`` only) and
``test_monitor_long_call`` (``rabbit://``/``amqp://`` only); the driver's own
tests (``test_driver.py``) run the same scenarios on zmqactors.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from oslo_messaging.tests.functional import test_functional as upstream
from oslo_messaging.tests.functional.notify import test_logger

pytestmark = [
    pytest.mark.integration,
    # oslo deprecates its own eventlet executor and get_transport(), which
    # its functional tests still use.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

BACKENDS = ("zmq", "redis", "etcd")


def _define(name: str, base: type, **attrs: object) -> None:
    globals()[name] = type(name, (base,), {"__module__": __name__, **attrs})


test_logger.LoggingNotificationHandlerTestCase.generate_scenarios()

for _backend in BACKENDS:
    for _case in (upstream.CallTestCase, upstream.CastTestCase, upstream.NotifyTestCase):
        _define(f"Test{_case.__name__}_{_backend}", _case, zmq_backend=_backend)
    for _scenario, _attrs in test_logger.LoggingNotificationHandlerTestCase.scenarios:
        _label = re.sub(r"\W+", "_", _scenario).strip("_")
        _define(
            f"TestLoggingNotificationHandler_{_label}_{_backend}",
            test_logger.LoggingNotificationHandlerTestCase,
            zmq_backend=_backend,
            **_attrs,
        )

# pytest collects every unittest class a module holds, whatever its name.
del _backend, _case, _scenario, _attrs, _label

# oslo's MetricsTestCase: oslo.messaging's own client reports to an oslo.metrics
# collector process (``python3 -m oslo_metrics``, found on PATH), scraped on its
# fixed port 3000. It terminates that process without reaping it: a
# ResourceWarning of oslo's, not ours.
_define(
    "TestMetricsTestCase_zmq",
    upstream.MetricsTestCase,
    zmq_backend="zmq",
    pytestmark=[
        pytest.mark.filterwarnings("ignore::ResourceWarning"),
        pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    ],
)


@pytest.fixture(autouse=True)
def _python3_is_this_interpreter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """``python3`` on PATH is this interpreter, which has oslo.metrics (MetricsTestCase)."""
    if "Metrics" in request.node.nodeid:
        path = os.environ.get("PATH", "")
        monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{path}")
