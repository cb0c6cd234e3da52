"""CURVE on and off: the key pairs of a run and what encryption costs each side."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.common import CURVE_COST_TARGET, median
from zmqactors.net import keys as key_files

if TYPE_CHECKING:
    from collections.abc import Mapping


def curve_costs(samples: Mapping[str, list[float]]) -> dict[str, float]:
    """What CURVE costs each side: ``1 - rate with CURVE / rate without``, from the medians.

    ``samples`` are a run's per-round figures. Keys: ``zmqactors_sync`` (one
    caller), ``zmqactors_pipelined`` (``call_async``), ``raw_sync``,
    ``raw_pipelined``.
    """
    pairs = {
        "zmqactors_sync": ("za_curve_sync_rate", "za_t1_rate"),
        "zmqactors_pipelined": ("za_curve_async_rate", "za_async_rate"),
        "raw_sync": ("raw_curve_sync_rate", "raw_t1_rate"),
        "raw_pipelined": ("raw_curve_pipelined_rate", "raw_pipelined_rate"),
    }
    return {
        name: 1.0 - median(samples[on]) / median(samples[off]) for name, (on, off) in pairs.items()
    }


def format_curve_costs(costs: Mapping[str, float]) -> str:
    """One line per side: what CURVE costs in % of throughput, against the target."""
    worst = max(costs["zmqactors_sync"], costs["zmqactors_pipelined"])
    met = "yes" if worst < CURVE_COST_TARGET else "NO"
    return (
        f"CURVE cost, zmqactors: sync {costs['zmqactors_sync']:.1%}, "
        f"pipelined {costs['zmqactors_pipelined']:.1%} "
        f"(target < {CURVE_COST_TARGET:.0%}: {met})\n"
        f"CURVE cost, raw pyzmq: sync {costs['raw_sync']:.1%}, "
        f"pipelined {costs['raw_pipelined']:.1%}"
    )


def write_keys(directory: str) -> dict[str, str]:
    """Key pairs for a server and a client, and an allow-list of both, under ``directory``."""
    keys = Path(directory) / "curve"
    allowed = keys / "allowed"
    paths: dict[str, str] = {"allowed": str(allowed)}
    for role in ("server", "client"):
        public, secret = key_files.write_key_pair(str(keys), role)
        paths[role] = str(secret)
        allowed.mkdir(exist_ok=True)
        shutil.copy(public, allowed)
    return paths
