"""An oslo.messaging RPC server and client on zmq:// (pip install 'zmqactors[oslo]')."""

import sys
from pathlib import Path

# This file's name would shadow the oslo_service package that oslo.messaging imports.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
import oslo_messaging as messaging  # noqa: E402
import structlog  # noqa: E402
from oslo_config import cfg  # noqa: E402


class Calculator:
    def add(self, _ctxt: dict, a: int, b: int) -> int:
        return a + b


cfg.CONF([])
# zmqactors never configures logging: send its structlog events to the standard
# logging module, where oslo.log (or, here, nothing) decides what to keep.
structlog.configure(
    processors=[structlog.stdlib.filter_by_level, structlog.processors.KeyValueRenderer()],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
)
transport = messaging.get_rpc_transport(cfg.CONF, url="zmq://")  # or zmq+redis://host:6379/0
server = messaging.get_rpc_server(
    transport, messaging.Target(topic="calc", server="node-1"), [Calculator()]
)
server.start()  # returns once the server is registered: calls reach it from now on
client = messaging.get_rpc_client(transport, messaging.Target(topic="calc"), timeout=5)
print(client.call({"user": "alice"}, "add", a=1, b=2))  # 3
client.cast({}, "add", a=3, b=4)  # no reply
server.stop()
server.wait()
transport.cleanup()
