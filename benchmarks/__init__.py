"""Benchmarks of zmqactors, kept out of the installed package (run them from a checkout).

``make bench`` (``python -m benchmarks``) measures zmqactors against raw pyzmq,
every side in its own processes. On TCP loopback
(127.0.0.1, or ::1 with ``--host ::1``; ephemeral ports) with ~100-byte
arguments it first measures raw pyzmq baselines, then zmqactors, and prints
each zmqactors figure beside its baseline with the ratio:

===================================  ==========================================
zmqactors                            raw pyzmq baseline
===================================  ==========================================
sync ``call``, 1 caller thread       DEALER->ROUTER echo, 1 outstanding
sync ``call``, 32 threads            DEALER->ROUTER echo, 100 outstanding
``call_async``, 100 outstanding      DEALER->ROUTER echo, 100 outstanding
``cast`` delivered/s                 PUSH->PULL delivered/s
fanout ``cast`` to 3 servers         3 PUSH->PULL, one per server, each message
                                     sent on all three
notifications/s to 1 listener        PUSH->PULL delivered/s (the row above)
notifications/s to a pool of 2       one PUSH->2 PULL (round-robin)
p50 / p99 of sync calls              p50 / p99 of the 1-outstanding echo
sync ``call`` with CURVE             CURVE DEALER->ROUTER echo, 1 outstanding
``call_async`` with CURVE, 100 out   CURVE DEALER->ROUTER echo, 100 outstanding
peak RSS of client, server, sinks    peak RSS of the raw client, server, sinks
===================================  ==========================================

CURVE on/off: the server process also serves the same endpoint on a second
transport with CurveZMQ (key pairs written by `zmqactors.net.security`
in the run's temporary directory, an allow-list, the ZAP authenticator), the
raw server a second ROUTER with CURVE and a ``zmq.auth`` ZAP handler, and
each client measures both sockets in the same run. The report adds the cost
of CURVE for each side, ``1 - rate with CURVE / rate without`` (target for
zmqactors: under 25% of call throughput).

Every side runs in fresh processes started with the ``spawn`` method: one
server process, three *sink* processes and one client process for raw pyzmq,
then the same for zmqactors. This process only orchestrates: it passes
addresses and results over `multiprocessing` pipes, waits for each with a
timeout, and terminates its children in ``finally``. zmqactors finds its
servers and listeners through a file matchmaker in a fresh temporary directory.

The sinks receive fanouts and notifications; each is a separate process
(closer to a deployment than three servers in one process, and the raw side
gets the same three processes). A zmqactors sink hosts an `RPCServer` named
``bench-sink-<i>`` on one fanout topic, which also answers the client's
control calls (reset, counts), and the notification listeners: sink 0 listens
on the "one listener" topic and on the "pool" topic, sink 1 on the "pool"
topic, both in one pool; sink 2 only takes fanouts. A raw sink is the raw
server again: a PULL counter and a ROUTER for control.

Each figure is measured for ``--duration`` seconds (default 3) after a
``--warmup`` (0.5), and the whole schedule is repeated ``--repeat`` times (3);
the table shows medians (these 2-CPU machines vary by +-15% from run to run).
With the defaults the whole run takes about two minutes; ``--quick`` (0.5 s,
0.1 s, one repeat) about 15 seconds.

Notes on fairness:

- Delivered rates (raw PUSH->PULL, ``cast``, fanout, notifications) are
  counted by the receivers between the first and the last message received;
  with several receivers, from the first received by any to the last received
  by any (`time.monotonic`, one clock for every process on the machine).
- A fanout counts as delivered when all 3 servers got it: fanouts/s is the
  smallest of the three counts over that window, which is also the messages/s
  each server received; the total is the sum of the three counts over it.
- The fanout baseline is one PUSH per server with each message sent on all
  three, not PUB->3 SUB: zmqactors sends a fanout as one message per server
  over one socket per server, which is that shape, and PUSH blocks at its
  high-water mark so the baseline loses nothing, whereas PUB drops silently
  for a slow subscriber and fans out inside libzmq's I/O thread (work no
  Python sender does).
- The notifications-to-one-listener baseline is the ``cast`` baseline (one
  PUSH->PULL), measured once. For the pool of two, one PUSH connected to two
  PULL sinks spreads messages round-robin, as the notifier takes the pool's
  listeners in turn.
- zmqactors casts and notifications have no sender-side back-pressure (a full
  send queue drops one with a warning and counts ``send_failures``) while a
  raw PUSH blocks at its high-water mark, so the zmqactors clients pace
  themselves, keeping at most two batches in flight (`CAST_BATCH` casts or
  notifications, `FANOUT_BATCH` fanouts). Casts and fanouts: after every
  batch a ``call_async`` checkpoint to each server (it travels behind the
  batch on the same socket), then wait for the previous batch's checkpoints.
  Notifications reach the listener's own socket, not the server's, so a
  checkpoint would not follow them: after every batch the client asks the
  sinks' RPC servers for their counts until all but the last batch are
  delivered (sleeping in between for about the time the rest should take).
- Nothing may be lost: the client sends exactly as many messages as it counts,
  the receivers count what arrives, and the report prints the difference
  (sent - delivered) and the transports' drop counters.
- The raw processes import these modules, hence the zmqactors package, too, so
  the raw RSS is the floor of the same interpreter and imports; the difference
  is what zmqactors' actors, threads and buffers cost at run time.

Modules, by figure:

- `benchmarks.run`: the command line and the orchestration (``__main__`` runs it).
- `benchmarks.raw`: the raw pyzmq baseline, its server and client processes.
- `benchmarks.servers` and `benchmarks.client`: the zmqactors processes.
- `benchmarks.calls`, `benchmarks.throughput` (casts, fanout),
  `benchmarks.notify`, `benchmarks.curve`: how each figure is measured.
- `benchmarks.common`, `benchmarks.processes`, `benchmarks.report`: settings,
  child processes, the table and the JSON document.
- ``bench_oslo.py`` (``make bench-oslo``): oslo.messaging's simulator, a script.
- `benchmarks.scale` (``make bench-scale``, ``python -m benchmarks.scale``):
  N = 10, 100, 1,000 servers on one topic, how each figure grows with N;
  one N's phases in `benchmarks.scale_run`, its child processes in
  `benchmarks.scale_procs`, its tables, JSON and plot
  in `benchmarks.scale_report`, matchmaker commands and ``--redis`` in
  `benchmarks.scale_matchmaker`.
"""
