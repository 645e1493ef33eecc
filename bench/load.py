#!/usr/bin/env python3
"""A bounded load test of `triage serve`, from a second process on loopback.

Starts the release binary on 127.0.0.1 (a fresh data directory), then C
client threads upload N bundles in all (the corpus bundles, packed as
.tar.gz), each following its job to the end. A 503 is honoured: the client
waits Retry-After and uploads again. Reports throughput, latency
percentiles (upload accepted, and upload to result), how many uploads were
refused, and checks that every accepted upload got its result and that the
result names the same rules as `triage diagnose` on the same archive.

    bench/load.py [--uploads 400] [--concurrency 16] [--workers 2] [--queue 32]

With --distributed, the same load drives the distributed mode: for each
count in --worker-procs (default 1,2,3) it starts a fresh nats-server with
JetStream and a fresh PostgreSQL (initialised in a temporary directory, as
the `postgres` user when run as root) on free loopback ports, --fronts
`triage serve --nats --database` processes (clients spread over them) and
that many `triage worker --workers 1` processes, and prints a line per
count beside the embedded mode's with as many worker threads:

    bench/load.py --distributed --worker-procs 1,2,3 --uploads 300 --concurrency 16

Only standard-library Python; nothing is sent anywhere but 127.0.0.1.
"""

import argparse
import glob
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "triage")
CASES = [
    "seed-lic-001",
    "healthy",
    "net-001-syn-dropped",
    "net-003-dns",
    "ssm-onprem-001-upstream-down",
    "time-001-clock-skew",
]


def pack(case):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(os.path.join(ROOT, "corpus", case, "bundle"), arcname=".")
    return buf.getvalue()


def expected_rules(case, archive, tmp):
    path = os.path.join(tmp, case + ".tgz")
    with open(path, "wb") as f:
        f.write(archive)
    out = subprocess.run([BINARY, "diagnose", "--format", "json", path], capture_output=True, check=False)
    return [d["rule_id"] for d in json.loads(out.stdout)["diagnoses"]]


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on port {port}")


class Servers:
    """A nats-server with JetStream and a PostgreSQL, fresh, on loopback."""

    def __init__(self, tmp):
        nats = shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not nats or not bindirs:
            sys.exit("--distributed needs nats-server and PostgreSQL (Debian packages nats-server, postgresql)")
        self.dir = tempfile.mkdtemp(prefix="servers-", dir=tmp)
        os.chmod(self.dir, 0o755)
        self.nats_port, self.pg_port = free_port(), free_port()
        self.nats = subprocess.Popen(
            [nats, "-js", "-a", "127.0.0.1", "-p", str(self.nats_port), "-sd", os.path.join(self.dir, "js")],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "nats.log"), "w"))
        wait_port(self.nats_port, "nats-server")
        bindir = bindirs[-1]
        pgdata = os.path.join(self.dir, "pg")
        os.mkdir(pgdata)
        # PostgreSQL refuses to run as root.
        run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if run_as:
            shutil.chown(pgdata, "postgres")
        subprocess.run([*run_as, f"{bindir}/initdb", "-D", pgdata, "-U", "triage", "--auth=trust", "-E", "UTF8", "-N"],
                       check=True, stdout=subprocess.DEVNULL)
        self.pg = subprocess.Popen(
            [*run_as, f"{bindir}/postgres", "-D", pgdata, "-p", str(self.pg_port), "-k", pgdata,
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "pg.log"), "w"))
        wait_port(self.pg_port, "PostgreSQL")
        time.sleep(0.5)
        self.nats_url = f"nats://127.0.0.1:{self.nats_port}"
        self.db_url = f"postgres://triage@127.0.0.1:{self.pg_port}/postgres"

    def stop(self):
        for proc in (self.nats, self.pg):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_serve(args_list, log):
    server = subprocess.Popen([BINARY, "serve", "--listen", "127.0.0.1:0", *args_list],
                              stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    line = server.stdout.readline()
    base = line.strip().rsplit(" ", 1)[-1]
    if not base.startswith("http://127.0.0.1:"):
        sys.exit(f"the service did not start: {line!r}; see {log}")
    return server, base


def drive(bases, auth, args, archives):
    """The clients: uploads spread over `bases`, each followed to its end."""
    lock = threading.Lock()
    next_upload = [0]
    accept_ms, total_ms, refused, results, errors = [], [], [0], [], []

    def client():
        while True:
            with lock:
                i = next_upload[0]
                if i >= args.uploads:
                    return
                next_upload[0] += 1
            case = CASES[i % len(CASES)]
            base = bases[i % len(bases)]
            body = archives[case]
            started = time.monotonic()
            while True:
                t0 = time.monotonic()
                status, headers, answer = request(
                    "POST", f"{base}/v1/bundles?name={case}.tgz", body, {"Content-Type": "application/gzip", **auth})
                if status in (503, 429):
                    with lock:
                        refused[0] += 1
                    time.sleep(float(headers.get("Retry-After", "1")))
                    continue
                break
            if status != 202:
                with lock:
                    errors.append(f"upload {i}: HTTP {status} {answer[:200]!r}")
                continue
            accepted = time.monotonic()
            job_id = json.loads(answer)["id"]
            while True:
                status, _, answer = request("GET", f"{base}/v1/bundles/{job_id}", headers=auth)
                job = json.loads(answer)
                if job["status"] in ("done", "failed"):
                    break
                time.sleep(0.02)
            done = time.monotonic()
            with lock:
                accept_ms.append((accepted - t0) * 1000)
                total_ms.append((done - started) * 1000)
                results.append((case, job))

    wall0 = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"wall": time.monotonic() - wall0, "accept_ms": accept_ms, "total_ms": total_ms,
            "refused": refused[0], "results": results, "errors": errors}


def check(run, expected):
    return [(c, j["id"], j.get("diagnoses"), expected[c]) for c, j in run["results"]
            if j["status"] != "done" or (j.get("diagnoses") or []) != expected[c]]


def summary_line(label, run, archives):
    n = len(run["results"])
    mib = sum(len(archives[c]) for c, _ in run["results"]) / 2**20
    return (f"{label:<34} {n / run['wall']:7.1f} bundles/s ({mib / run['wall']:.2f} MiB/s)   "
            f"upload to result p50 {percentile(run['total_ms'], 50):7.1f} ms  p99 {percentile(run['total_ms'], 99):7.1f} ms   "
            f"503s {run['refused']}")


def embedded(args, tmp, archives, workers):
    data = tempfile.mkdtemp(prefix="data-", dir=tmp)
    made = subprocess.run([BINARY, "serve", "token", "create", "--role", "admin", "--name", "load", "--data", data],
                          capture_output=True, text=True)
    token = made.stdout.strip() if made.returncode == 0 else None
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    # The clients stand for many: no per-client or per-token upload bound.
    unbounded = ["--max-uploads-per-client", "0", "--max-uploads-per-token", "0"] if token else []
    server, base = start_serve(["--data", data, "--workers", str(workers), "--queue", str(args.queue),
                                "--reload-interval", "0", *unbounded], os.path.join(data, "serve.log"))
    run = drive([base], auth, args, archives)
    _, _, run["health"] = request("GET", f"{base}/healthz")
    server.terminate()
    server.wait(timeout=60)
    return run


def distributed(args, tmp, archives, procs):
    servers = Servers(tmp)
    made = subprocess.run([BINARY, "serve", "token", "create", "--role", "admin", "--name", "load",
                           "--database", servers.db_url], capture_output=True, text=True)
    if made.returncode != 0:
        sys.exit(f"cannot create a token: {made.stderr}")
    auth = {"Authorization": f"Bearer {made.stdout.strip()}"}
    common = ["--nats", servers.nats_url, "--database", servers.db_url]
    fronts, bases, workers = [], [], []
    for n in range(args.fronts):
        data = tempfile.mkdtemp(prefix=f"front{n}-", dir=tmp)
        server, base = start_serve([*common, "--data", data, "--queue", str(args.queue), "--reload-interval", "0",
                                    "--max-uploads-per-client", "0", "--max-uploads-per-token", "0"],
                                   os.path.join(data, "serve.log"))
        fronts.append(server)
        bases.append(base)
    for n in range(procs):
        data = tempfile.mkdtemp(prefix=f"worker{n}-", dir=tmp)
        worker = subprocess.Popen([BINARY, "worker", *common, "--data", data, "--workers", "1",
                                   "--reload-interval", "0"],
                                  stdout=subprocess.PIPE, stderr=open(os.path.join(data, "worker.log"), "w"), text=True)
        if not worker.stdout.readline().startswith("triage worker:"):
            sys.exit(f"a worker did not start; see {data}/worker.log")
        workers.append(worker)
    run = drive(bases, auth, args, archives)
    _, _, run["health"] = request("GET", f"{bases[0]}/healthz")
    for proc in fronts + workers:
        proc.terminate()
    for proc in fronts + workers:
        proc.wait(timeout=60)
    servers.stop()
    return run


def report(run, args, label, expected, archives):
    wrong = check(run, expected)
    print(f"{label}: uploads {args.uploads}, clients {args.concurrency}, queue {args.queue}")
    print(f"accepted and diagnosed: {len(run['results'])}   refused with 503 (then retried): {run['refused']}   "
          f"errors: {len(run['errors'])}")
    mib = sum(len(archives[c]) for c, _ in run["results"]) / 2**20
    print(f"wall {run['wall']:.1f} s   throughput {len(run['results']) / run['wall']:.1f} bundles/s "
          f"({mib / run['wall']:.2f} MiB/s of archives)")
    for name, values in (("upload accepted", run["accept_ms"]), ("upload to result", run["total_ms"])):
        print(f"{name:<17} ms: p50 {percentile(values, 50):7.1f}  p90 {percentile(values, 90):7.1f}  "
              f"p99 {percentile(values, 99):7.1f}  max {max(values or [0]):7.1f}")
    print(f"every accepted upload got its result, with the rules diagnose names: "
          f"{'yes' if not wrong and not run['errors'] else 'NO'}")
    print(f"service at the end: {run['health'].decode()}")
    for e in run["errors"][:5]:
        print("  error:", e)
    for w in wrong[:5]:
        print("  wrong:", w)
    return not wrong and not run["errors"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploads", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queue", type=int, default=32)
    ap.add_argument("--distributed", action="store_true",
                    help="drive the distributed mode (and the embedded one beside it)")
    ap.add_argument("--worker-procs", default="1,2,3", help="worker process counts to run, with --distributed")
    ap.add_argument("--fronts", type=int, default=1, help="front processes, with --distributed")
    args = ap.parse_args()

    if not os.path.exists(BINARY):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="triage-load-")
    # PostgreSQL runs as its own user, which must reach its directory.
    os.chmod(tmp, 0o755)
    archives = {case: pack(case) for case in CASES}
    expected = {case: expected_rules(case, archives[case], tmp) for case in CASES}

    if not args.distributed:
        run = embedded(args, tmp, archives, args.workers)
        sys.exit(0 if report(run, args, f"embedded, workers {args.workers}", expected, archives) else 1)

    lines, ok = [], True
    for procs in [int(n) for n in args.worker_procs.split(",")]:
        for label, run in ((f"embedded, {procs} worker threads", embedded(args, tmp, archives, procs)),
                           (f"distributed, {args.fronts} front, {procs} workers",
                            distributed(args, tmp, archives, procs))):
            ok = report(run, args, label, expected, archives) and ok
            lines.append(summary_line(label, run, archives))
            print()
    print(f"uploads {args.uploads}, clients {args.concurrency}, queue {args.queue}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    for line in lines:
        print(line)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
