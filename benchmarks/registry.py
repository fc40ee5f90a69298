"""Every benchmark ``make bench`` runs: one :class:`Benchmark` line each.

``script`` is a file in ``benchmarks/`` that prints its result as Markdown (tables and plain
lines) and exits non-zero when its own checks fail. ``full`` are the arguments of ``make bench``
(the figures in docs/benchmarks.md), ``quick`` those of ``make bench-quick`` (same code paths,
smaller sizes, fewer or shorter rounds); an empty ``quick`` leaves the benchmark out of
``make bench-quick`` (those that need minutes of real time: the 3-minute budget). ``marker`` names the block of docs/benchmarks.md the
runner rewrites: between ``<!-- bench:<marker> begin -->`` and ``<!-- bench:<marker> end -->``
(appended under ``title`` at the end of the file when the markers are missing). Order here is
run order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script and how to run it."""

    name: str
    script: str
    quick: tuple[str, ...]
    full: tuple[str, ...]
    title: str
    marker: str = ""

    def __post_init__(self) -> None:
        if not self.marker:
            object.__setattr__(self, "marker", self.name)

    def command(self, quick: bool) -> list[str]:
        """The script and its arguments (run it with the same Python, from the checkout's root)."""
        return [f"benchmarks/{self.script}", *(self.quick if quick else self.full)]


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("cache", "cache_throughput.py", ("--bars", "18750", "--repeat", "3"), ("--bars", "93750", "--repeat", "5"),
              "History cache throughput"),
    Benchmark("feed", "bench_feed.py", ("--bars", "3750", "--repeat", "3"), ("--bars", "60000", "--repeat", "3"),
              "FyersData vs PandasData (backtest feed)"),
    Benchmark("sdk-pandas", "bench_sdk_pandas.py", ("--bars", "3750", "--repeat", "3"),
              ("--bars", "60000", "--repeat", "3"), "Raw SDK + PandasData on every run vs the warm cache"),
    Benchmark("rest-budget", "bench_rest_budget.py", ("--ops", "500", "--repeat", "3"), ("--ops", "2000", "--repeat", "5"),
              "REST budget slot: shared budget file vs in-process limiter"),
    Benchmark("backfill", "bench_backfill.py", ("--minutes", "1"), ("--minutes", "2"),
              "REST cold backfill: pace against the FYERS rate budget"),
    Benchmark("data-socket", "bench_data_socket.py", ("--seconds", "0.5", "--sdk-records", "5000", "--rounds", "1"),
              ("--seconds", "5", "--step", "300", "--rounds", "3"), "Venue data socket throughput"),
    Benchmark("order-path", "bench_order_path.py", ("--rounds", "3", "--orders", "4"), ("--rounds", "3", "--orders", "40"),
              "Order path: place -> Accepted -> fill notification, library vs raw SDK"),
    Benchmark("restart", "bench_restart.py", ("--open", "20", "--fills", "200", "--rounds", "3"),
              ("--open", "500", "--fills", "5000", "--rounds", "3"), "Restart with 500 open orders and 5,000 fills"),
    Benchmark("tick-path", "bench_tick_path.py", ("--quick",), ("--rounds", "3"),
              "Tick path: raw SDK vs adapter, store routing and FyersData bars"),
    Benchmark("backfill-shared", "bench_backfill_shared.py", (),
              ("--minutes", "1", "--rounds", "3", "--modes", "postgres,per-process"),
              "Three processes backfilling through one user's budget"),
    Benchmark("bar-latency", "bench_bar_latency.py", (), ("--seconds", "15", "--rounds", "3"),
              "Bar latency with many live feeds (tick / clock edge -> next())"),
    Benchmark("soak", "bench_soak.py", (), ("--minutes", "10", "--fault-every", "60"),
              "Live soak: 22 feeds, injected faults, a silent symbol"),
    Benchmark("failover", "bench_failover.py", (), ("--rounds", "3"),
              "Failover with PostgreSQL state: from the owner's SIGKILL to the successor's first order"),
)


def by_name(name: str) -> Benchmark:
    """The benchmark called ``name`` (ValueError naming the known ones otherwise)."""
    for bench in BENCHMARKS:
        if bench.name == name:
            return bench
    raise ValueError(f"no benchmark {name!r}; known: {', '.join(b.name for b in BENCHMARKS)}")
