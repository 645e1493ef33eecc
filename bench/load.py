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

Only standard-library Python; nothing is sent anywhere but 127.0.0.1.
"""

import argparse
import io
import json
import os
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploads", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queue", type=int, default=32)
    args = ap.parse_args()

    if not os.path.exists(BINARY):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="triage-load-")
    archives = {case: pack(case) for case in CASES}
    expected = {case: expected_rules(case, archives[case], tmp) for case in CASES}

    data = os.path.join(tmp, "data")
    # An admin token (a binary from before access control has no tokens).
    made = subprocess.run([BINARY, "serve", "token", "create", "--role", "admin", "--name", "load", "--data", data],
                          capture_output=True, text=True)
    token = made.stdout.strip() if made.returncode == 0 else None
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    # The clients stand for many: no per-client or per-token upload bound.
    unbounded = ["--max-uploads-per-client", "0", "--max-uploads-per-token", "0"] if token else []
    server = subprocess.Popen(
        [BINARY, "serve", "--listen", "127.0.0.1:0", "--data", data,
         "--workers", str(args.workers), "--queue", str(args.queue), "--reload-interval", "0", *unbounded],
        stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "serve.log"), "w"), text=True)
    line = server.stdout.readline()
    base = line.strip().rsplit(" ", 1)[-1]
    if not base.startswith("http://127.0.0.1:"):
        sys.exit(f"the service did not start: {line!r}")

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
    wall = time.monotonic() - wall0

    wrong = [(c, j["id"], j.get("diagnoses"), expected[c]) for c, j in results
             if j["status"] != "done" or (j.get("diagnoses") or []) != expected[c]]
    _, _, health = request("GET", f"{base}/healthz")
    server.terminate()
    server.wait(timeout=60)

    mib = sum(len(archives[c]) for c, _ in results) / 2**20
    print(f"uploads {args.uploads}, clients {args.concurrency}, workers {args.workers}, queue {args.queue}")
    print(f"accepted and diagnosed: {len(results)}   refused with 503 (then retried): {refused[0]}   errors: {len(errors)}")
    print(f"wall {wall:.1f} s   throughput {len(results) / wall:.1f} bundles/s ({mib / wall:.2f} MiB/s of archives)")
    for name, values in (("upload accepted", accept_ms), ("upload to result", total_ms)):
        print(f"{name:<17} ms: p50 {percentile(values, 50):7.1f}  p90 {percentile(values, 90):7.1f}  "
              f"p99 {percentile(values, 99):7.1f}  max {max(values or [0]):7.1f}")
    print(f"every accepted upload got its result, with the rules diagnose names: {'yes' if not wrong and not errors else 'NO'}")
    print(f"service at the end: {health.decode()}")
    for e in errors[:5]:
        print("  error:", e)
    for w in wrong[:5]:
        print("  wrong:", w)
    sys.exit(1 if wrong or errors else 0)


if __name__ == "__main__":
    main()
