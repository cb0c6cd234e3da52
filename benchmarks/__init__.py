"""Benchmarks of zmqactors, kept out of the installed package (run them from a checkout).

``make bench`` (``python -m benchmarks``) measures zmqactors beside two peers
on the same ~100-byte argument over TCP loopback (127.0.0.1, or ::1 with
``--host ::1``; ephemeral ports), every server and client in its own process:

- **raw pyzmq**, the ceiling: a DEALER->ROUTER echo, PUSH->PULL counters;
- **Pyro5**, what a user would pick instead for RPC between Python
  processes: its ``thread`` server type, the ``msgpack`` serializer, one
  `Pyro5.api.Proxy` per caller thread (a proxy belongs to one thread), an
  ``echo`` method; both ends set ``SOCK_NODELAY`` as ZeroMQ does
  (`benchmarks.pyro`);
- **zmqactors**: an `RPCServer` whose endpoint echoes, found through a file
  matchmaker; one transport and one `RPCClient` shared by every caller thread.

Rounds are interleaved: every server runs for the whole run, and each round
asks raw pyzmq's client, then Pyro5's, then zmqactors' for one pass over
their figures, so a burst of load from elsewhere on the machine (these are
2 shared cores) falls on all three alike. The report gives each figure's
median over ``--repeat`` rounds (default 5) with its spread, ``median
[min..max]``, each system side by side, then zmqactors' ratio to its peer
and the target of issue #14, met or MISSED:

===================================  ============================  ========
figure                               zmqactors compared with       target
===================================  ============================  ========
sync calls/s, 1 caller               Pyro5 (raw shown too)         >= 0.8x
sync calls/s, 16 caller threads      Pyro5 (raw shown too)         >= 2.5x
``call_async``, 100 outstanding      raw echo, 100 outstanding     >= 0.35x
client CPU µs/call, pipelined        raw echo, 100 outstanding     <= 25 µs
server CPU µs/call, pipelined        raw echo, 100 outstanding     <= 30 µs
p99 latency, 16 caller threads       Pyro5                         <= 1x
p50 latency, 16 threads; p50/p99, 1  Pyro5                         -
sync call with CURVE, 1 caller       raw CURVE echo                >= 0.5x
``call_async`` with CURVE, 100 out   raw CURVE echo, 100 out       >= 0.8x
``cast`` delivered/s                 PUSH->PULL delivered/s        -
fanout ``cast`` to 3 servers         3 PUSH->PULL, one per server  -
notifications/s to 1 listener        PUSH->PULL (as for casts)     -
notifications/s to a pool of 2       one PUSH->2 PULL              -
peak RSS of client, server, sinks    raw's (Pyro5's shown too)     -
===================================  ============================  ========

The raw fanout baseline sends each message on all three PUSH sockets.

The concurrency sweep: sync round trips from 1, 2, 4, 16 and 64 caller
threads for each system (raw: a DEALER per thread; Pyro5: a proxy per
thread; zmqactors: the one shared `RPCClient`, threads calling ``call``),
calls/s over all threads and p50/p99 of every call, each timed with
`time.perf_counter_ns` (`benchmarks.sweep`). Each thread opens its
connection and makes one call before the clock starts; a warm-up follows,
then the timed window. The rows for 1 and 16 threads above come from it.

CPU per call: while ``call_async`` (and raw's pipelined echo) keeps 100
calls outstanding, the client reads its own process time and the server's
from ``/proc/<pid>/stat`` (every thread of each process, 10 ms ticks) before
and after; divided by the calls.

CURVE on/off: the server process also serves the same endpoint on a second
transport with CurveZMQ (key pairs written by `zmqactors.net.security`
in the run's temporary directory, an allow-list, the ZAP authenticator), the
raw server a second ROUTER with CURVE and a ``zmq.auth`` ZAP handler, and
each client measures both sockets in the same round. The report adds the
cost of CURVE for each side, ``1 - rate with CURVE / rate without`` (target
for zmqactors: under 25% of call throughput).

Every process is started with the ``spawn`` method: raw pyzmq has one
server, three *sink* processes and a client; Pyro5 a server and a client;
zmqactors one server, three sinks and a client. This process only
orchestrates: it passes addresses, commands and results over
`multiprocessing` pipes, waits for each with a timeout, and terminates its
children in ``finally``. zmqactors finds its servers and listeners through a
file matchmaker in a fresh temporary directory.

The sinks receive fanouts and notifications; each is a separate process
(closer to a deployment than three servers in one process, and the raw side
gets the same three processes). A zmqactors sink hosts an `RPCServer` named
``bench-sink-<i>`` on one fanout topic, which also answers the client's
control calls (reset, counts), and the notification listeners: sink 0 listens
on the "one listener" topic and on the "pool" topic, sink 1 on the "pool"
topic, both in one pool; sink 2 only takes fanouts. A raw sink is the raw
server again: a PULL counter and a ROUTER for control.

Each figure is measured for ``--duration`` seconds (default 2) after a
``--warmup`` (0.5). With the defaults a run takes about 7 minutes on 2
cores; ``--quick`` (0.3 s, 0.1 s, one round) about 20 seconds. The tables
go to stdout, the figures, every round's samples and the latency CDFs to
``--json PATH`` (default ``build/bench.json``; ``--json`` alone prints the
JSON on stdout instead of the tables), and a PNG to ``--plot PATH`` (default
``build/bench.png``): the latency CDF at 1 and 16 caller threads and calls/s
against caller threads, per system (`benchmarks.plot`).

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
- The raw and Pyro5 processes import these modules, hence the zmqactors
  package, too, so their RSS is the floor of the same interpreter and
  imports; the difference is what each system costs at run time.
- A client process waits idle while the other systems' rounds run; its
  transports and sockets stay open, idle.

Modules, by figure:

- `benchmarks.run`: the command line and the orchestration of the rounds
  (``__main__`` runs it).
- `benchmarks.raw`: the raw pyzmq baseline, its server and client processes.
- `benchmarks.pyro`: the Pyro5 peer, its server and client processes.
- `benchmarks.servers` and `benchmarks.client`: the zmqactors processes.
- `benchmarks.sweep`, `benchmarks.calls`, `benchmarks.throughput` (casts,
  fanout), `benchmarks.notify`, `benchmarks.curve`: how each figure is measured.
- `benchmarks.common`, `benchmarks.processes`, `benchmarks.report`,
  `benchmarks.plot`: settings and measures of CPU, child processes and their
  rounds, the tables and the JSON document, the plot.
- ``bench_oslo.py`` (``make bench-oslo``): oslo.messaging's simulator, a script.
- `benchmarks.scale` (``make bench-scale``, ``python -m benchmarks.scale``):
  N = 10, 100, 1,000 servers on one topic, how each figure grows with N;
  one N's phases in `benchmarks.scale_run`, its child processes in
  `benchmarks.scale_procs`, its tables, JSON and plot
  in `benchmarks.scale_report`, matchmaker commands and ``--redis`` in
  `benchmarks.scale_matchmaker`.
"""
