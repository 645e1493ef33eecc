#!/usr/bin/env python3
"""Writes the seed corpus of the `archive_reader` fuzz target: small real
archives of every kind the bundle reader knows (tar, tar.gz, zip, gzip,
nested, with links and odd names), so that mutations start past the
headers instead of from random bytes. Deterministic; run from anywhere:

    python3 fuzz/make-seeds.py        # writes fuzz/seeds/archive_reader/
"""
import gzip
import io
import os
import tarfile
import zipfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "archive_reader")
LOG = (b"13-Jan-2023 17:29:03,491 IST ERROR [vm] [SmartLicensingIntegrationRestfulResource] "
       b"(default task-24) |default| Failed to authenticate Smart Account credentials.\n")
CAPTURE = (b"11:59:02.801513 IP (tos 0x0, ttl 64, id 24618, offset 0, flags [DF], proto TCP (6), length 52)\n"
           b"    192.168.10.1.57886 > 10.106.66.55.8443: Flags [S], cksum 0xfadb (incorrect -> 0x1907), seq 1, win 29200, length 0\n")


def tar_bytes(members, compress=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1673631300
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, data.decode()
                tar.addfile(info)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
    return buf.getvalue()


def zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name, (2023, 1, 13, 17, 35, 0)), data)
    return buf.getvalue()


def gz(data):
    return gzip.compress(data, mtime=0)


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "plain.log": LOG,
        "log.gz": gz(LOG),
        "admin-tech.tar": tar_bytes([("var/log/nms/", b"", "dir"), ("var/log/nms/vmanage-server.log", LOG, "file")]),
        "admin-tech.tar.gz": tar_bytes([("var/log/nms/vmanage-server.log", LOG, "file"),
                                        ("captures/tcpdump.txt", CAPTURE, "file")], compress=True),
        "links.tar": tar_bytes([("a.log", LOG, "file"), ("up", b"../../etc/passwd", "symlink"),
                                ("../climb.log", LOG, "file"), ("/abs.log", LOG, "file")]),
        "bundle.zip": zip_bytes([("var/log/messages", LOG), ("captures/out1.txt", CAPTURE)]),
        "nested.zip": zip_bytes([("inner.tar.gz", tar_bytes([("x/vmanage-server.log", LOG, "file")], compress=True)),
                                 ("inner.log.gz", gz(LOG))]),
        "nested.tar.gz": tar_bytes([("inner.zip", zip_bytes([("deep.tar", tar_bytes([("d.log", LOG, "file")]))]), "file"),
                                    ("odd\nname.log", LOG, "file")], compress=True),
        "empty.tar.gz": tar_bytes([], compress=True),
        "empty.zip": zip_bytes([]),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name.replace("\n", "_")), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
