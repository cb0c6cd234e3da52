"""Targets and every key derived from them."""

from zmqactors.topics._target import DEFAULT_EXCHANGE, Target, validate_name
from zmqactors.topics.keys import matchmaker_key, notification_key, version_compatible

__all__ = [
    "DEFAULT_EXCHANGE",
    "Target",
    "matchmaker_key",
    "notification_key",
    "validate_name",
    "version_compatible",
]
