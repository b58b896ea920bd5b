"""Load test of `mt serve` on this machine: N concurrent clients for S seconds, then the same
sentences through `mt translate -i` for comparison. Bounded in time and requests; 127.0.0.1 only.

    python scripts/load_test.py --test ../shared/data/tatoeba-en-zh/test.tsv [--checkpoint DIR]
        [--clients 16] [--seconds 30] [--json results/load_test.json] [--serve-args '--threads 1']

Each client posts one sentence per request to POST /translate (LibreTranslate's route), cycling
through the test set. Prints requests/s, sentences/s, p50/p99 latency, failed requests, the
server's peak RSS with its RSS at the start and the end of the load (flat memory means no leak),
the cores the server and the clients kept busy; then `mt translate -i FILE` sentences/s on the
same sentences, beam as the checkpoint's.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
MAX_REQUESTS = 200_000  # a bound whatever the speed


def process_tree(pid: int) -> list[int]:
    """PID and its descendants (the server's worker processes), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A /proc/PID/status memory field (VmRSS now, VmHWM the peak) summed over PID and its
    descendants, MB."""
    total = 0
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith(field + ":"))
    return total / 1024


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """User + system CPU time of PID (and its descendants) so far, seconds (/proc/PID/stat)."""
    total = 0
    for member in process_tree(pid) if descendants else [pid]:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", required=True, help="TSV (source<TAB>target) whose sources are sent")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--serve-args", default="", help="more `mt serve` options, e.g. '--threads 1'")
    args = parser.parse_args()
    sentences = [line.split("\t")[0] for line in Path(args.test).read_text(encoding="utf-8").splitlines() if line.strip()]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    checkpoint = ["--checkpoint", args.checkpoint] if args.checkpoint else []
    server = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "serve", "--port", str(port), *checkpoint,
                               *args.serve_args.split()],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                target = requests.get(url + "languages", timeout=1).json()[0]
                break
            except requests.ConnectionError:
                if server.poll() is not None:
                    raise SystemExit("mt serve did not start")
                time.sleep(0.3)
        source, tgt = target["code"], target["targets"][0]
        requests.post(url + "translate", json={"q": sentences[0], "source": source, "target": tgt}, timeout=60)
        latencies: list[float] = []
        failures = [0]
        lock = threading.Lock()
        counter = iter(range(MAX_REQUESTS))
        stop_at = time.monotonic() + args.seconds
        rss_start = rss_mb(server.pid)
        cpu_start = cpu_seconds(server.pid), cpu_seconds(os.getpid(), descendants=False)

        def client() -> None:
            session = requests.Session()
            for number in counter:
                if time.monotonic() >= stop_at:
                    return
                began = time.monotonic()
                try:
                    ok = session.post(url + "translate", json={"q": sentences[number % len(sentences)], "source": source,
                                                             "target": tgt}, timeout=60).ok
                except requests.RequestException:
                    ok = False
                with lock:
                    latencies.append(time.monotonic() - began)
                    failures[0] += not ok

        began = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        server_cpu = cpu_seconds(server.pid) - cpu_start[0]
        client_cpu = cpu_seconds(os.getpid(), descendants=False) - cpu_start[1]
        health = requests.get(url + "health", timeout=10).json()
        report = {"clients": args.clients, "seconds": elapsed, "requests": len(latencies), "failed": failures[0],
                  "requests_per_s": len(latencies) / elapsed, "sentences_per_s": len(latencies) / elapsed,
                  "p50_ms": 1000 * statistics.median(latencies),
                  "p99_ms": 1000 * statistics.quantiles(latencies, n=100)[98],
                  "server_rss_mb_start": rss_start, "server_rss_mb_end": rss_mb(server.pid),
                  "server_peak_rss_mb": rss_mb(server.pid, "VmHWM"), "batches": health["batches"],
                  "server_cpu_cores": server_cpu / elapsed, "clients_cpu_cores": client_cpu / elapsed}
    finally:
        server.terminate()
        server.wait(30)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as text:
        text.write("".join(s + "\n" for s in sentences))
        text.flush()
        began = time.monotonic()
        subprocess.run([sys.executable, str(ROOT / "cli.py"), "translate", "-i", text.name, *checkpoint],
                       stdout=subprocess.DEVNULL, check=True)
        report["mt_translate_sentences_per_s"] = len(sentences) / (time.monotonic() - began)
    for key, value in report.items():
        print(f"{key:30} {value:,.1f}" if isinstance(value, float) else f"{key:30} {value:,}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
