"""Every Prometheus object the scheduler exports, and the ``--monitor`` HTTP endpoint.

Names and labels of the Go scheduler are in ``GO_NAMES`` (contract §6), ours in ``OUR_NAMES``
(both in ``metric_names.py``); nothing else spells a metric name. Differences from Go, on
purpose: ``scheduled_count`` and ``schedule_error_count`` really count (§8.6); the schedules gauge is the
number actually loaded (§8.3); the paused gauge exists from the start and the leader gauge drops to 0 on
shutdown (§8.16). Everything lives on a dedicated ``CollectorRegistry`` (plus process,
platform and GC collectors, the counterpart of Go's runtime collectors).

Go's counters are named without ``_total``; prometheus_client insists on that suffix in the
``# HELP``/``# TYPE`` lines of any counter, so ``render()`` restores Go's exact lines.
"""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ajc_gitops.names import ELECTION_KEY
from ajc_gitops.scheduler.metric_names import DEFAULT_SCHEDULE_SERIES_LIMIT, GO_NAMES, OUR_NAMES

__all__ = ["GO_NAMES", "OUR_NAMES", "MonitorServer", "SchedulerMetrics"]

SKIP_REASONS = ("decode", "cron", "cron_panic")

_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_STALL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_log = logging.getLogger(__name__)


class _Counters(Collector):
    """Our counters: exact sample names (no ``_total`` appended, no ``_created`` series)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple[str, ...], float]] = {}
        self._specs = {n: s for n, s in {**GO_NAMES, **OUR_NAMES}.items() if s[0] == "counter"}

    def inc(self, name: str, *labels: str, amount: float = 1.0) -> None:
        assert len(labels) == len(self._specs[name][1]), name
        with self._lock:
            series = self._values.setdefault(name, {})
            series[labels] = series.get(labels, 0.0) + amount

    def value(self, name: str, *labels: str) -> float:
        with self._lock:
            return self._values.get(name, {}).get(labels, 0.0)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = {n: dict(v) for n, v in self._values.items()}
        for name, (_, label_names, doc) in self._specs.items():
            if name.endswith("_total"):
                metric = Metric(name.removesuffix("_total"), doc, "counter")
            else:
                metric = Metric(name, doc, "counter")
            unlabelled = not label_names
            for labels, value in sorted(snapshot.get(name, {(): 0.0} if unlabelled else {}).items()):
                metric.add_sample(name, dict(zip(label_names, labels, strict=True)), value)
            yield metric


_PER_SCHEDULE = (
    "ajc_gitops_scheduler_schedule_last_fire_timestamp_seconds",
    "ajc_gitops_scheduler_schedule_next_fire_timestamp_seconds",
    "ajc_gitops_scheduler_schedule_period_seconds",
)


class _ScheduleGauges(Collector):
    """The per-schedule gauges as plain dicts: a prometheus_client labelled child costs
    hundreds of bytes, and a leader of 100,000 schedules holds three series each."""

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._capped = False
        self.values: dict[str, dict[str, float]] = {name: {} for name in _PER_SCHEDULE}

    def set(self, name: str, schedule: str, value: float) -> None:
        with self._lock:
            self.values[name][schedule] = value

    def remove(self, name: str, schedule: str) -> None:
        with self._lock:
            self.values[name].pop(schedule, None)

    def clear(self, name: str) -> None:
        with self._lock:
            self.values[name].clear()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            count = max(len(series) for series in self.values.values())
            capped = count > self._limit
            snapshot = {name: {} if capped else dict(series) for name, series in self.values.items()}
        if capped != self._capped:
            self._capped = capped
            if capped:
                _log.warning(
                    "per-schedule metrics not exported: %d schedules, over --schedule-metrics-limit %d "
                    "(ajc-gitops status answers per schedule at any size)",
                    count,
                    self._limit,
                )
        for name in _PER_SCHEDULE:
            metric = Metric(name, OUR_NAMES[name][2], "gauge")
            for schedule, value in sorted(snapshot[name].items()):
                metric.add_sample(name, {"schedule": schedule}, value)
            yield metric


class SchedulerMetrics:
    """The scheduler's metrics; implements the election and follow observer protocols."""

    def __init__(self, identity: str, *, schedule_series_limit: int = DEFAULT_SCHEDULE_SERIES_LIMIT) -> None:
        self.identity = identity
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._counters = _Counters()
        self.registry.register(self._counters)
        self._per_schedule = _ScheduleGauges(schedule_series_limit)
        self.registry.register(self._per_schedule)
        g = {n: s for n, s in {**GO_NAMES, **OUR_NAMES}.items() if s[0] == "gauge" and n not in _PER_SCHEDULE}
        self._gauges = {n: Gauge(n, doc, list(labels), registry=self.registry) for n, (_, labels, doc) in g.items()}
        self._lag = Histogram(
            "ajc_gitops_scheduler_fire_lag_seconds",
            OUR_NAMES["ajc_gitops_scheduler_fire_lag_seconds"][2],
            buckets=_LAG_BUCKETS,
            registry=self.registry,
        )
        self._stall = Histogram(
            "ajc_gitops_scheduler_event_loop_stall_seconds",
            OUR_NAMES["ajc_gitops_scheduler_event_loop_stall_seconds"][2],
            ["phase"],
            buckets=_STALL_BUCKETS,
            registry=self.registry,
        )
        self._longest_stall: dict[str, float] = {}
        for phase in ("loading", "running"):
            self._gauge("ajc_gitops_scheduler_event_loop_stall_max_seconds", phase).set(0)
        self._gauge("choria_asyncjobs_task_scheduler_paused").set(1)  # §8.16: present from start
        self._gauge("choria_asyncjobs_task_scheduler_schedules_total").set(0)
        self._election_gauge("choria_asyncjobs_election_leader").set(0)
        self.invalid_schedules({})

    def _gauge(self, name: str, *labels: str) -> Any:
        gauge = self._gauges[name]
        return gauge.labels(*labels) if labels else gauge

    def _election_gauge(self, name: str) -> Any:
        return self._gauge(name, ELECTION_KEY, self.identity)

    # -- election (scheduler.election.ElectionObserver) ----------------------------------

    def campaign(self, state: str) -> None:
        self._counters.inc("choria_asyncjobs_election_campaigns", ELECTION_KEY, self.identity, state)

    def leader(self, held: bool) -> None:
        self._election_gauge("choria_asyncjobs_election_leader").set(1 if held else 0)

    def paused(self, paused: bool) -> None:
        self._gauge("choria_asyncjobs_task_scheduler_paused").set(1 if paused else 0)

    def interval(self, seconds: float) -> None:
        self._election_gauge("choria_asyncjobs_election_interval_seconds").set(seconds)

    # -- follow (scheduler.follow.FollowObserver) ------------------------------------------

    def schedules_loaded(self, count: int) -> None:
        self._gauge("choria_asyncjobs_task_scheduler_schedules_total").set(count)

    def schedule_skipped(self, reason: str) -> None:
        self._counters.inc("ajc_gitops_scheduler_invalid_schedules_skipped_total", reason)

    def invalid_schedules(self, counts: Mapping[str, int]) -> None:
        for reason in (*SKIP_REASONS, *(r for r in counts if r not in SKIP_REASONS)):
            self._gauge("ajc_gitops_scheduler_invalid_schedules", reason).set(counts.get(reason, 0))

    # -- firing (scheduler.tasks / the runner) -----------------------------------------

    def task_scheduled(self, task_type: str, queue: str) -> None:
        self._counters.inc("choria_asyncjobs_task_scheduler_scheduled_count", task_type, queue)

    def schedule_error(self, task_type: str, queue: str) -> None:
        self._counters.inc("choria_asyncjobs_task_scheduler_schedule_error_count", task_type, queue)

    def enqueued(self, queue: str) -> None:
        self._counters.inc("choria_asyncjobs_queue_enqueue_count", queue)

    def enqueue_error(self, queue: str) -> None:
        self._counters.inc("choria_asyncjobs_queue_enqueue_error_count", queue)

    def task_stored(self, state: str) -> None:
        self._counters.inc("choria_asyncjobs_task_update_total", state)

    def task_store_error(self) -> None:
        self._counters.inc("choria_asyncjobs_task_update_error_total")

    def fire_lag(self, seconds: float) -> None:
        self._lag.observe(max(0.0, seconds))

    def catchup_fire(self) -> None:
        self._counters.inc("ajc_gitops_scheduler_catchup_fires_total")

    def duplicate_suppressed(self) -> None:
        self._counters.inc("ajc_gitops_scheduler_duplicate_fires_suppressed_total")

    # -- requeueing stranded tasks (scheduler.requeue.RequeueMetrics) ----------------------

    def requeued(self, queue: str) -> None:
        self._counters.inc("ajc_gitops_scheduler_requeued_total", queue)

    def requeue_abandoned(self, queue: str) -> None:
        self._counters.inc("ajc_gitops_scheduler_requeue_abandoned_total", queue)

    def requeue_pending(self, count: int) -> None:
        self._gauge("ajc_gitops_scheduler_requeue_pending").set(count)
    # -- the event loop (scheduler.loopprobe.StallObserver) ----------------------------------

    def loop_stall(self, phase: str, seconds: float) -> None:
        self._stall.labels(phase).observe(seconds)
        if seconds >= self._longest_stall.get(phase, -1.0):
            self._longest_stall[phase] = seconds
            self._gauge("ajc_gitops_scheduler_event_loop_stall_max_seconds", phase).set(seconds)

    # -- per schedule (scheduler.fire_report) and per group (scheduler.group) ---------------

    def schedule_fired(self, name: str, slot_s: int) -> None:
        self._per_schedule.set("ajc_gitops_scheduler_schedule_last_fire_timestamp_seconds", name, slot_s)

    def schedule_next(self, name: str, slot_s: int | None, period_s: int | None) -> None:
        """Its next slot while we lead (None: removed, or none left) and, when known, the
        seconds between its latest slot and that one (the staleness alert's yardstick)."""
        gauges = self._per_schedule
        if slot_s is not None:
            gauges.set("ajc_gitops_scheduler_schedule_next_fire_timestamp_seconds", name, slot_s)
            if period_s is not None:
                gauges.set("ajc_gitops_scheduler_schedule_period_seconds", name, period_s)
            return
        gauges.remove("ajc_gitops_scheduler_schedule_next_fire_timestamp_seconds", name)
        gauges.remove("ajc_gitops_scheduler_schedule_period_seconds", name)

    def schedule_missed(self, name: str, count: int) -> None:
        self._counters.inc("ajc_gitops_scheduler_missed_slots_total", name, amount=count)

    def schedules_cleared(self) -> None:
        self._per_schedule.clear("ajc_gitops_scheduler_schedule_next_fire_timestamp_seconds")
        self._per_schedule.clear("ajc_gitops_scheduler_schedule_period_seconds")

    def group_leader(self, holder: str | None, kind: str) -> None:
        """The election key as last read: ``holder`` None when nobody holds it."""
        gauge = self._gauges["ajc_gitops_scheduler_group_leader"]
        gauge.clear()
        if holder is not None:
            gauge.labels(holder, kind).set(1)
        self._gauge("ajc_gitops_scheduler_group_has_leader").set(0 if holder is None else 1)

    # -- reading ---------------------------------------------------------------------------

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's current value (tests and the dev command)."""
        return self.registry.get_sample_value(name, labels)

    def render(self) -> bytes:
        text = generate_latest(self.registry).decode()
        for name, (kind, _, _) in GO_NAMES.items():
            if kind == "counter" and not name.endswith("_total"):
                # See the module docstring: Go's exposition has no ``_total`` here.
                text = text.replace(f"# HELP {name}_total ", f"# HELP {name} ")
                text = text.replace(f"# TYPE {name}_total counter", f"# TYPE {name} counter")
        return text.encode()


class MonitorServer:
    """``/metrics``, ``/healthz`` (alive and NATS connected) and ``/readyz`` (schedules
    loaded) on a stdlib HTTP server in a daemon thread, so a busy event loop cannot make
    probes time out. ``port=0`` picks a free port (tests)."""

    def __init__(
        self,
        metrics: SchedulerMetrics,
        port: int,
        *,
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
        host: str = "",  # Go listens on ":<port>", every interface
    ) -> None:
        routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, metrics.render()),
            "/healthz": lambda: _probe(healthy(), "NATS connected", "NATS not connected"),
            "/readyz": lambda: _probe(ready(), "schedules loaded", "initial schedules not loaded"),
        }

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                status, ctype, body = route() if route else (404, "text/plain", b"not found\n")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                _log.debug("monitor: " + format, *args)

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="monitor", daemon=True)

    def start(self) -> MonitorServer:
        self._thread.start()
        _log.info("monitor: serving /metrics, /healthz, /readyz on port %d", self.port)
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> MonitorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _probe(ok: bool, yes: str, no: str) -> tuple[int, str, bytes]:
    return (200, "text/plain", f"ok: {yes}\n".encode()) if ok else (503, "text/plain", f"{no}\n".encode())
