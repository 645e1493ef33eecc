#!/usr/bin/env python3
"""A bounded attack on `triage serve`'s intake, from a second process on loopback.

Starts the given binary (default: the release build) on 127.0.0.1 with a
fresh data directory, then, one after the other, each bounded in time:

  slowloris   F connections from 127.0.0.2 each send an upload's head and
              2 body bytes, then nothing; a closed one is opened again at
              once. Meanwhile, from 127.0.0.1, a real upload every second
              and /healthz every 200 ms: their answers and times.
  idle        N sockets from 127.0.0.2 that send nothing; then /healthz
              from 127.0.0.1, ten times: its time.
  no-expect   one worker held (the TRIAGE_SERVE_TEST_HOLD_FILE hook), the
              queue filled, then an upload of 16 MiB sent whole without
              `Expect: 100-continue` by a raw socket: what the client reads.
  retry-after with the worker held at a job, the Retry-After of the 503 as
              the queue holds 1, 2, 4 jobs (queue capacity 1, 2, 4).
  slow-job    one worker on a bundle that takes seconds (the report's
              tar), one job queued: the Retry-After of a refused upload
              each second, and when a place was in fact free.
  report      a tar of K one-line files (an upload of a few MB whose
              report is tens of MB): the report's size, the database's
              size, and the service's RSS before and while it serves the
              report.

    bench/attack.py [--binary target/release/triage] [--seconds 20] [--flood 64] [--idle 520] [--files 200000] [--body-mib 16]

Only standard-library Python; nothing is sent anywhere but 127.0.0.1 (and
127.0.0.2, loopback too on Linux, so the attacker has an address of its own).
"""

import argparse
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
ATTACKER = "127.0.0.2"


def pack_dir(path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(path, arcname=".")
    return buf.getvalue()


def many_files(count):
    """A .tar.gz of `count` one-line log files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for i in range(count):
            line = f"2026-01-01T00:00:{i % 60:02d}Z ERROR service-{i % 97} failed to connect to 10.0.{i % 250}.{i % 200}: timeout {i}\n".encode()
            info = tarfile.TarInfo(f"logs/{i // 1000:03d}/file-{i}.log")
            info.size = len(line)
            tar.addfile(info, io.BytesIO(line))
    return buf.getvalue()


def make_token(binary, data, role, name):
    """A token made with `triage serve token create`; None for a binary
    from before access control (it has no such command)."""
    made = subprocess.run([binary, "serve", "token", "create", "--role", role, "--name", name, "--data", data],
                          capture_output=True, text=True)
    return made.stdout.strip() if made.returncode == 0 else None


class Service:
    def __init__(self, binary, tmp, name, args=(), env=None):
        self.data = os.path.join(tmp, name)
        self.log = open(os.path.join(tmp, name + ".log"), "w")
        # The real client's token, and the attacker's own (an upload token).
        self.token = make_token(binary, self.data, "admin", "bench")
        self.attacker_token = make_token(binary, self.data, "upload", "attacker")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data", self.data, "--reload-interval", "0", *args],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env={**os.environ, **(env or {})})
        line = self.proc.stdout.readline()
        self.base = line.strip().rsplit(" ", 1)[-1]
        if not self.base.startswith("http://127.0.0.1:"):
            sys.exit(f"the service did not start: {line!r}")
        self.port = int(self.base.rsplit(":", 1)[1])

    def head_lines(self, token=None):
        """The Host and Authorization lines of a raw request (none of the
        latter for a binary without tokens)."""
        token = token or self.token
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        return f"Host: 127.0.0.1:{self.port}\r\n{auth}"

    def request(self, method, path, body=None, headers=None, timeout=60):
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                out = resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as e:
            out = e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
        except OSError as e:
            out = type(e).__name__, {}, str(e).encode()
        return (*out, (time.monotonic() - t0) * 1000)

    def upload(self, name, body):
        return self.request("POST", f"/v1/bundles?name={name}", body, {"Content-Type": "application/gzip"})

    def wait(self, job, statuses=("done", "failed"), limit=600):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            _, _, answer, _ = self.request("GET", f"/v1/bundles/{job}")
            try:
                found = json.loads(answer)
            except ValueError:
                found = {}
            if found.get("status") in statuses:
                return found
            time.sleep(0.05)
        return {}

    def rss_kib(self, field="VmRSS"):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def connect(port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def summary(values):
    if not values:
        return "none"
    values = sorted(values)
    return (f"p50 {values[len(values) // 2]:7.1f}  p90 {values[int(len(values) * 0.9)]:7.1f}  "
            f"max {values[-1]:7.1f}")


def slowloris(binary, tmp, args, bundle):
    svc = Service(binary, tmp, "slowloris", ["--workers", "2"])
    stop = threading.Event()
    opened = [0]
    head = (f"POST /v1/bundles?name=x.tgz HTTP/1.1\r\n{svc.head_lines(svc.attacker_token)}"
            "Content-Type: application/gzip\r\nContent-Length: 1000000\r\n\r\n").encode() + b"\x1f\x8b"

    def attacker():
        while not stop.is_set():
            try:
                s = connect(svc.port, ATTACKER)
                s.sendall(head)
                opened[0] += 1
                s.settimeout(0.5)
                while not stop.is_set():
                    try:
                        if not s.recv(4096):
                            break
                    except socket.timeout:
                        continue
                    except OSError:
                        break
                s.close()
            except OSError:
                time.sleep(0.05)

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(args.flood)]
    for t in threads:
        t.start()
    time.sleep(1)
    uploads, health = [], []
    deadline = time.monotonic() + args.seconds

    def checker():
        while time.monotonic() < deadline:
            status, _, _, ms = svc.request("GET", "/healthz", timeout=30)
            health.append((status, ms))
            time.sleep(0.2)

    hc = threading.Thread(target=checker)
    hc.start()
    while time.monotonic() < deadline:
        status, _, _, ms = svc.upload("real.tgz", bundle)
        uploads.append((status, ms))
        time.sleep(max(0, 1 - ms / 1000))
    hc.join()
    stop.set()
    accepted = [ms for s, ms in uploads if s == 202]
    print(f"slowloris: {args.flood} connections from {ATTACKER} sending a head and 2 bytes, "
          f"reopened when closed ({opened[0]} opened in {args.seconds + 1} s)")
    print(f"  real uploads from 127.0.0.1: {len(accepted)} of {len(uploads)} accepted; "
          f"answers {sorted(set(str(s) for s, _ in uploads))}; accepted ms: {summary(accepted)}")
    print(f"  /healthz: {sum(1 for s, _ in health if s == 200)} of {len(health)} answered 200; ms: {summary([ms for _, ms in health])}")
    svc.stop()


def idle(binary, tmp, args):
    svc = Service(binary, tmp, "idle")
    sockets = []
    for _ in range(args.idle):
        try:
            sockets.append(connect(svc.port, ATTACKER))
        except OSError:
            break
    time.sleep(0.5)
    times = []
    for _ in range(10):
        status, _, _, ms = svc.request("GET", "/healthz", timeout=60)
        times.append(ms if status == 200 else float("inf"))
    print(f"idle: {len(sockets)} sockets from {ATTACKER} that send nothing; /healthz from 127.0.0.1, ms: {summary(times)}")
    for s in sockets:
        s.close()
    svc.stop()


def hold_queue(binary, tmp, name, capacity, bundle):
    """A service with one worker held at its first job and `capacity` jobs queued behind it."""
    hold = os.path.join(tmp, name + ".hold")
    open(hold, "w").close()
    svc = Service(binary, tmp, name, ["--workers", "1", "--queue", str(capacity)],
                  {"TRIAGE_SERVE_TEST_HOLD_FILE": hold})
    first = json.loads(svc.upload("first.tgz", bundle)[2])["id"]
    svc.wait(first, ("running",))
    for i in range(capacity):
        svc.upload(f"q{i}.tgz", bundle)
    return svc, hold


def no_expect(binary, tmp, args, bundle):
    svc, hold = hold_queue(binary, tmp, "noexpect", 1, bundle)
    body = b"\x1f\x8b" + b"\0" * (args.body_mib * 1024 * 1024 - 2)
    s = connect(svc.port, "127.0.0.1")
    s.settimeout(30)
    head = (f"POST /v1/bundles?name=big.gz HTTP/1.1\r\n{svc.head_lines()}Content-Type: application/gzip\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    try:
        s.sendall(head + body)
        answer = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        seen = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(nothing)"
    except OSError as e:
        seen = f"{type(e).__name__}: {e}"
    print(f"no-expect: a {args.body_mib} MiB upload sent whole without Expect to a full queue; the client got: {seen}")
    s.close()
    os.remove(hold)
    svc.stop()


def retry_after(binary, tmp, bundle):
    got = []
    for capacity in (1, 2, 4):
        svc, hold = hold_queue(binary, tmp, f"retry{capacity}", capacity, bundle)
        status, headers, _, _ = svc.upload("late.tgz", bundle)
        got.append(f"{capacity} queued: {status} Retry-After {headers.get('retry-after')}")
        os.remove(hold)
        svc.stop()
    print("retry-after (one worker, held; mean job time as the service knows it): " + "; ".join(got))


def slow_job(binary, tmp, args, bundle):
    """One worker diagnosing a bundle that takes seconds, one job queued behind it: the
    Retry-After of a refused upload as the long job runs, against the real wait."""
    svc = Service(binary, tmp, "slowjob", ["--workers", "1", "--queue", "1"])
    big = json.loads(svc.upload("many.tgz", many_files(args.files))[2])["id"]
    svc.wait(big, ("running",))
    t0 = time.monotonic()
    svc.upload("queued.tgz", bundle)
    said = []
    while True:
        status, headers, _, _ = svc.upload("late.tgz", bundle)
        if status == 202:
            break
        said.append(f"{time.monotonic() - t0:.1f} s: {headers.get('retry-after')}")
        time.sleep(1)
    print(f"slow job: one worker on a job of {args.files} files, one queued; Retry-After of the 503 at "
          f"{'; '.join(said[:6])}{' ...' if len(said) > 6 else ''}; a place was free after {time.monotonic() - t0:.1f} s")
    svc.stop()


def report(binary, tmp, args):
    svc = Service(binary, tmp, "report", ["--workers", "1"])
    archive = many_files(args.files)
    t0 = time.monotonic()
    status, _, answer, _ = svc.upload("many.tgz", archive)
    job = json.loads(answer)["id"]
    found = svc.wait(job)
    took = time.monotonic() - t0
    time.sleep(0.5)
    before = svc.rss_kib()
    peak = [before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], svc.rss_kib())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    status, _, text, ms = svc.request("GET", f"/v1/bundles/{job}/report", timeout=120)
    stop.set()
    sampler.join()
    db = sum(os.path.getsize(os.path.join(svc.data, f)) for f in os.listdir(svc.data) if f.startswith("triage.db"))
    print(f"report: a tar.gz of {args.files} one-line files ({len(archive) / 1e6:.1f} MB) -> job {found.get('status')} in {took:.1f} s")
    print(f"  report served: {status}, {len(text) / 1e6:.1f} MB in {ms:.0f} ms; database {db / 1e6:.1f} MB")
    print(f"  service RSS before the request {before / 1024:.0f} MiB, highest while serving it {peak[0] / 1024:.0f} MiB "
          f"(+{(peak[0] - before) / 1024:.0f} MiB)")
    svc.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "triage"))
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--flood", type=int, default=64)
    ap.add_argument("--idle", type=int, default=520)
    ap.add_argument("--files", type=int, default=200000)
    ap.add_argument("--body-mib", type=int, default=16)
    ap.add_argument("--only", default="slowloris,idle,no-expect,retry-after,slow-job,report")
    args = ap.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"no binary at {args.binary}: cargo build --release, or give --binary")
    tmp = tempfile.mkdtemp(prefix="triage-attack-")
    bundle = pack_dir(os.path.join(ROOT, "corpus", "seed-lic-001", "bundle"))
    only = args.only.split(",")
    try:
        if "slowloris" in only:
            slowloris(args.binary, tmp, args, bundle)
        if "idle" in only:
            idle(args.binary, tmp, args)
        if "no-expect" in only:
            no_expect(args.binary, tmp, args, bundle)
        if "retry-after" in only:
            retry_after(args.binary, tmp, bundle)
        if "slow-job" in only:
            slow_job(args.binary, tmp, args, bundle)
        if "report" in only:
            report(args.binary, tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
