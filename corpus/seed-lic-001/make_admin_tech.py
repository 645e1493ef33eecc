#!/usr/bin/env python3
"""Build the seed case's admin-tech tarball, byte for byte reproducibly.

Reads  admin-tech-src/<top dir>/...   (next to this script)
Writes bundle/<top dir>.tar.gz

Deterministic: members sorted by name, fixed mtime, uid/gid 0 (root), fixed modes,
gzip header without file name and with mtime 0.
"""
import gzip
import io
import os
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = "10.66.76.81-um8_vManage-20230113-173500-admin-tech"
SRC = os.path.join(HERE, "admin-tech-src")
OUT = os.path.join(HERE, "bundle", TOP + ".tar.gz")
MTIME = 1673611500  # 2023-01-13 12:05:00 UTC = 17:35:00 IST, the admin-tech time in its name


def entries():
    """Yield (archive name, absolute path) for the top dir and everything below it, sorted."""
    root = os.path.join(SRC, TOP)
    names = [TOP]
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, SRC)
        for d in dirnames:
            names.append(os.path.join(rel, d))
        for f in filenames:
            names.append(os.path.join(rel, f))
    for name in sorted(n.replace(os.sep, "/") for n in names):
        yield name, os.path.join(SRC, name)


def tarinfo(name, path):
    ti = tarfile.TarInfo(name)
    ti.mtime = MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    if os.path.isdir(path):
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
    else:
        ti.size = os.path.getsize(path)
        ti.mode = 0o644
    return ti


def main():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, path in entries():
            ti = tarinfo(name, path)
            if ti.isdir():
                tar.addfile(ti)
            else:
                with open(path, "rb") as f:
                    tar.addfile(ti, f)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(buf.getvalue())
    print(OUT)


if __name__ == "__main__":
    main()
