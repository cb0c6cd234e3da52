"""The oslo.messaging driver: OpenStack services on zmqactors, unchanged.

``pip install zmqactors[oslo]``, then ``transport_url = zmq://`` (file
matchmaker on one host) or ``zmq+redis://HOST:6379/0`` in any service using
oslo.messaging. The driver is entry point ``zmq`` in group
``oslo.messaging.drivers`` (`ZmqActorsDriver`). Only this package imports
oslo.messaging; the rest of zmqactors never does.

- `driver`: `ZmqActorsDriver` (sends, calls, notifications, listeners).
- `listener`: the listeners and incoming messages oslo's servers drive.
- ``_envelope``: how oslo's request context and message dicts travel (JSON,
  as every oslo.messaging driver writes them).
- ``_targets``: oslo targets as zmqactors `Target` values and keys.
"""

from zmqactors.oslo.driver import ZmqActorsDriver

__all__ = ["ZmqActorsDriver"]
