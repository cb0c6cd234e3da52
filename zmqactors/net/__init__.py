"""The process's ZeroMQ plumbing, below the actors.

- `context`: the one ZeroMQ context of the process and its fork hooks.
- `sockets`: how network and inproc sockets are configured.
- `security`: CurveZMQ key files, the process's ZAP authenticator, CURVE socket set-up.
"""

__all__: list[str] = []
