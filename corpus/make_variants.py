#!/usr/bin/env python3
"""Write variant bundles of corpus cases: the same situation at another site.

A rule tuned to one sample (its host name, its date, its zone) would miss
the same fault elsewhere. Each variant below takes a corpus case and changes
what differs between sites: the Manager's host name and addresses, the SSM
On-Prem address and name, the on-prem user, the date (and so the year and
weekday), the Manager's time zone, and file names where the formats allow.
The fault itself is untouched, so the case's rule must still come first.

    python3 corpus/make_variants.py     # rewrites corpus/<case>-variant/

Times are moved, not retyped: every date is shifted by the variant's number
of days, and the Manager's own times (those written with its zone, and the
admin-tech name) also by the change of zone, so that the Manager and SSM
On-Prem still agree on the instant of each event (or disagree by as much as
before, in the clock-skew case). Deterministic: the same input gives the
same bytes.
"""
import datetime as dt
import gzip
import io
import os
import re
import shutil
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
FULL_MONTHS = {"June": "Jun", "July": "Jul", "Sept": "Sep"}
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
ZONES = {"UTC": 0, "IST": 330, "CET": 60, "EST": -300, "EDT": -240, "JST": 540}


def month_number(name):
    return MONTHS.index(FULL_MONTHS.get(name, name[:3])) + 1


def month_name(number, like):
    """The month as the original wrote it: `June` stays a full name."""
    short = MONTHS[number - 1]
    if len(like) > 3:
        return {v: k for k, v in FULL_MONTHS.items()}.get(short, short)
    return short


class Variant:
    def __init__(self, name, source, year, days, zone, replace, users=None, rename=None, note=""):
        self.name = name
        self.source = source
        self.year = year  # the year of the source's year-less dates (syslog)
        self.days = dt.timedelta(days=days)
        self.zone_from, self.zone_to = zone  # the Manager's zone abbreviation, before and after
        self.zone_shift = dt.timedelta(minutes=ZONES[zone[1]] - ZONES[zone[0]])
        self.replace = replace  # (regex, replacement), in order
        self.users = users  # (old user, new user)
        self.rename = rename or []  # (regex over the path inside the bundle, replacement)
        self.note = note

    # ---- times -----------------------------------------------------------
    def shift(self, when, manager_zone):
        return when + self.days + (self.zone_shift if manager_zone else dt.timedelta())

    def move_times(self, text):
        z = re.escape(self.zone_from)

        # vmanage-server.log: 13-Jan-2023 17:29:03,490 IST (or another zone)
        def server_log(m):
            d, mon, y, hms, ms, zone = m.groups()
            when = dt.datetime(int(y), month_number(mon), int(d), *map(int, hms.split(":")))
            new = self.shift(when, zone == self.zone_from)
            out_zone = self.zone_to if zone == self.zone_from else zone
            return f"{new.day:02d}-{month_name(new.month, mon)}-{new.year} {new:%H:%M:%S},{ms} {out_zone}"

        text = re.sub(r"\b(\d\d)-([A-Z][a-z]+)-(\d{4}) (\d\d:\d\d:\d\d),(\d{3}) ([A-Z]{2,5})\b", server_log, text)

        # show clock: 14:31:07.902 CET Tue Mar 4 2025
        def show_clock(m):
            hms, frac, zone, _wd, mon, d, y = m.groups()
            when = dt.datetime(int(y), month_number(mon), int(d), *map(int, hms.split(":")))
            new = self.shift(when, zone == self.zone_from)
            out_zone = self.zone_to if zone == self.zone_from else zone
            return f"{new:%H:%M:%S}.{frac} {out_zone} {WEEKDAYS[new.weekday()]} {MONTHS[new.month - 1]} {new.day} {new.year}"

        text = re.sub(r"\b(\d\d:\d\d:\d\d)\.(\d{3}) ([A-Z]{2,5}) ([A-Z][a-z]{2}) ([A-Z][a-z]{2}) (\d{1,2}) (\d{4})\b", show_clock, text)

        # date(1), sysmgrd `Current time:`, Java's Date.toString: Thu Mar  2 10:49:12 IST 2023
        def date_cmd(m):
            _wd, mon, d, hms, zone, y = m.groups()
            when = dt.datetime(int(y), month_number(mon), int(d), *map(int, hms.split(":")))
            new = self.shift(when, zone == self.zone_from)
            out_zone = self.zone_to if zone == self.zone_from else zone
            # Java pads the day with a zero, date(1) with a space
            day = f"{new.day:02d}" if d.startswith("0") else f"{new.day:2d}"
            return f"{WEEKDAYS[new.weekday()]} {MONTHS[new.month - 1]} {day} {new:%H:%M:%S} {out_zone} {new.year}"

        text = re.sub(r"\b([A-Z][a-z]{2}) ([A-Z][a-z]{2}) ( ?\d{1,2}) (\d\d:\d\d:\d\d) ([A-Z]{2,5}) (\d{4})\b", date_cmd, text)

        # syslog (RFC 3164): Jan 13 11:59:03 at the start of a line, no year, no zone
        def syslog(m):
            mon, d, hms = m.groups()
            when = dt.datetime(self.year, month_number(mon), int(d), *map(int, hms.split(":")))
            new = self.shift(when, False)
            return f"{MONTHS[new.month - 1]} {new.day:2d} {new:%H:%M:%S}"

        text = re.sub(r"(?m)^([A-Z][a-z]{2}) ([ \d]\d) (\d\d:\d\d:\d\d)", syslog, text)

        # nginx access: [13/Jan/2023:11:59:03 +0000]
        def access(m):
            d, mon, y, hms = m.groups()
            new = self.shift(dt.datetime(int(y), month_number(mon), int(d), *map(int, hms.split(":"))), False)
            return f"{new.day:02d}/{MONTHS[new.month - 1]}/{new.year}:{new:%H:%M:%S}"

        text = re.sub(r"\b(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d:\d\d:\d\d)", access, text)

        # nginx error: 2023/04/18 08:12:44
        def error_log(m):
            y, mo, d, hms = m.groups()
            new = self.shift(dt.datetime(int(y), int(mo), int(d), *map(int, hms.split(":"))), False)
            return f"{new:%Y/%m/%d %H:%M:%S}"

        text = re.sub(r"\b(\d{4})/(\d\d)/(\d\d) (\d\d:\d\d:\d\d)", error_log, text)

        # Redis: 04 Mar 2025 15:59:41.049
        def redis(m):
            d, mon, y, hms = m.groups()
            new = self.shift(dt.datetime(int(y), month_number(mon), int(d), *map(int, hms.split(":"))), False)
            return f"{new.day:02d} {MONTHS[new.month - 1]} {new.year} {new:%H:%M:%S}"

        text = re.sub(r"\b(\d\d) ([A-Z][a-z]{2}) (\d{4}) (\d\d:\d\d:\d\d)", redis, text)
        return text

    def move_admin_tech_name(self, name):
        """<system-ip>-<host>-YYYYMMDD-HHMMSS-admin-tech: the Manager's local time."""

        def stamp(m):
            new = self.shift(dt.datetime.strptime(m.group(1), "%Y%m%d-%H%M%S"), True)
            return f"-{new:%Y%m%d-%H%M%S}-admin-tech"

        return re.sub(r"-(\d{8}-\d{6})-admin-tech", stamp, name)

    # ---- names, addresses, users -----------------------------------------
    def rewrite(self, text):
        text = self.move_times(text)
        for pattern, new in self.replace:
            text = re.sub(pattern, new, text)
        if self.users:
            old, new = self.users
            # only where the logs name the user, not `admin` in paths or words
            text = re.sub(rf"(user - '|for user:? |username=){re.escape(old)}\b", rf"\g<1>{new}", text)
        return text

    def rewrite_path(self, path):
        path = self.move_admin_tech_name(path)
        for pattern, new in self.replace + self.rename:
            path = re.sub(pattern, new, path)
        return path


# Doorkeeper's answers (config/locales/en.yml of doorkeeper-gem/doorkeeper).
GRANT = r'"invalid_grant","error_description":"The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client\."'
CLIENT = '"invalid_client","error_description":"Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."'
REQUEST = '"invalid_request","error_description":"The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed."'


def address(old):
    """A regex for an IPv4 address that is not part of a longer one."""
    return rf"(?<![\d.]){re.escape(old)}(?![\d])"


# ---- archives ---------------------------------------------------------------
def rewrite_tar_gz(variant, data, mtime):
    """The admin-tech tarball: members renamed and rewritten, as make_admin_tech.py writes it."""
    src = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as out:
        for member in sorted(src.getmembers(), key=lambda m: variant.rewrite_path(m.name)):
            ti = tarfile.TarInfo(variant.rewrite_path(member.name))
            ti.mtime = mtime
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.mode = member.mode
            if member.isdir():
                ti.type = tarfile.DIRTYPE
                out.addfile(ti)
            else:
                body = variant.rewrite(src.extractfile(member).read().decode("utf-8")).encode("utf-8")
                ti.size = len(body)
                out.addfile(ti, io.BytesIO(body))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def write_variant(variant):
    src_root = os.path.join(HERE, variant.source, "bundle")
    case = os.path.join(HERE, variant.name)
    out_root = os.path.join(case, "bundle")
    if os.path.exists(out_root):
        shutil.rmtree(out_root)
    changed = []
    for dirpath, _dirs, files in sorted(os.walk(src_root)):
        for f in sorted(files):
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, src_root).replace(os.sep, "/")
            new_rel = variant.rewrite_path(rel)
            with open(path, "rb") as fh:
                data = fh.read()
            if rel.endswith(".tar.gz"):
                stamp = re.search(r"-(\d{8}-\d{6})-admin-tech", new_rel)
                local = dt.datetime.strptime(stamp.group(1), "%Y%m%d-%H%M%S")
                utc = local - dt.timedelta(minutes=ZONES[variant.zone_to])
                mtime = int(utc.replace(tzinfo=dt.timezone.utc).timestamp())
                data = rewrite_tar_gz(variant, data, mtime)
            else:
                data = variant.rewrite(data.decode("utf-8")).encode("utf-8")
            target = os.path.join(out_root, new_rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(data)
            changed.append((rel, new_rel))
    with open(os.path.join(case, "README.md"), "w") as fh:
        fh.write(f"# {variant.name}\n\n")
        fh.write(f"Generated by `corpus/make_variants.py` from `corpus/{variant.source}`: {variant.note}\n\n")
        fh.write(f"- dates moved by {variant.days.days} days; the Manager's zone `{variant.zone_from}` is now `{variant.zone_to}` (its times moved with it)\n")
        for pattern, new in variant.replace:
            shown = re.sub(r"\(\?<!\[\\d\.\]\)|\(\?!\[\\d\]\)", "", pattern).replace("\\", "")
            fh.write(f"- `{shown}` -> `{new}`\n")
        if variant.users:
            fh.write(f"- on-prem user `{variant.users[0]}` -> `{variant.users[1]}`\n")
        fh.write("\nFiles:\n\n")
        for rel, new_rel in changed:
            fh.write(f"- `{rel}` -> `{new_rel}`\n" if rel != new_rel else f"- `{rel}`\n")
    # The fault is untouched, so the source's judgement expectations hold as they are.
    expect = os.path.join(HERE, variant.source, "expect.toml")
    if os.path.exists(expect):
        shutil.copyfile(expect, os.path.join(case, "expect.toml"))


VARIANTS = [
    Variant(
        name="seed-lic-001-variant",
        source="seed-lic-001",
        year=2023,
        days=685,  # 2023-01-13 -> 2024-11-28, when New York keeps EST
        zone=("IST", "EST"),
        replace=[
            (r"um8_vManage", "vmanage-nyc-03"),
            (address("10.66.76.81"), "172.16.40.21"),
            (address("192.168.10.1"), "10.40.3.17"),
            (address("10.106.66.55"), "10.221.8.40"),
            (address("10.110.35.124"), "10.40.9.77"),
            (r"SSM-On-Prem", "ssmop-dc2"),
            (r"ssm-on-prem", "ssmop-dc2.corp.example.net"),
            # Another code of the invalid_* family, and another wording of the status.
            (GRANT, CLIENT),
            (r"Failed to get access token: 403 Forbidden: \[(.*)\]$", r"Failed to get access token, status code: 403, body: \1"),
        ],
        users=("admin", "lic_sync"),
        rename=[(r"^captures/tcpdump-eth0\.txt$", "case-4711/out1.txt")],
        note="the seed case at a site in New York: other Manager, addresses, SSM On-Prem name, user, date and zone (EST); the token request refused with `invalid_client` and the status written `status code: 403`; the capture saved as `out1.txt`.",
    ),
    Variant(
        name="seed-lic-001-variant-cut",
        source="seed-lic-001",
        year=2023,
        days=-200,  # 2023-01-13 -> 2022-06-27 (month written in full in the Manager log: June)
        zone=("IST", "JST"),
        replace=[
            (r"um8_vManage", "vmanage-tky-2"),
            (address("10.66.76.81"), "10.9.0.10"),
            (address("192.168.10.1"), "10.9.0.10"),
            (address("10.106.66.55"), "10.9.200.5"),
            (address("10.66.76.85"), "10.9.0.10"),
            (r"SSM-On-Prem", "ssm-tky"),
            # Java's own wording of a refused request, no body; the GUI line
            # and the SSM On-Prem lines cut where the seed's OCR cut them.
            (r"Failed to get access token: 403 Forbidden: \[.*\]$", "Failed to get access token: Server returned HTTP response code: 403 for URL: https://10.9.200.5:8443/oauth/token"),
            (r"(Failed to authenticate Smart Account credentials\.: Failed to authenticate user - '[^']+'\. \{\"error\":\"inv).*$", r"\1"),
            (r"(?m)^(method=POST path=/oauth/token format=json controller=Doorkeep).*$", r"\1"),
            (r"(?m)^(\S+ - - \[\d\d/\w+/\d{4}:\d\d:\d\d:\d\d \+000).*$", r"\1"),
        ],
        users=("admin", "license-bot"),
        rename=[
            (r"^captures/tcpdump-eth0\.txt$", "tcpdump_vpn0.log"),
            (r"vmanage-server\.log$", "vmanage-server.log.1"),
        ],
        note="the seed case as its excerpts show it, at a site in Tokyo (JST): the GUI error cut after `{\"error\":\"inv`, the Doorkeeper and access lines cut at the right margin, the status only in Java's `Server returned HTTP response code: 403` wording; NAT-less addresses, another user, month, and file names.",
    ),
    Variant(
        name="seed-lic-001-variant-request",
        source="seed-lic-001",
        year=2023,
        days=500,  # 2023-01-13 -> 2024-05-27, EDT
        zone=("IST", "EDT"),
        replace=[
            (r"um8_vManage", "sdwan-mgr-east"),
            (address("10.66.76.81"), "198.18.10.4"),
            (address("192.168.10.1"), "198.18.10.4"),
            (address("10.106.66.55"), "198.18.77.9"),
            (address("10.66.76.85"), "198.18.10.4"),
            (r"SSM-On-Prem", "lic-onprem-01"),
            (GRANT, REQUEST),
            (r"Failed to get access token: 403 Forbidden: \[(.*)\]$", r"Failed to get access token, HTTP/1.1 403 Forbidden"),
        ],
        users=("admin", "svc_smartlic"),
        rename=[
            (r"^captures/tcpdump-eth0\.txt$", "case-0815/capture-vpn0.txt"),
            (r"^ssm-onprem/var/log/messages$", "case-0815/ssm/messages-20240527"),
        ],
        note="the seed case refused with `invalid_request`, the status written `HTTP/1.1 403 Forbidden` on its own line, in EDT; SSM On-Prem's messages and the capture under other names.",
    ),
    Variant(
        name="net-001-syn-dropped-variant",
        source="net-001-syn-dropped",
        year=2023,
        days=-401,  # 2023-03-02 -> 2022-01-25, EST
        zone=("IST", "EST"),
        replace=[
            (r"um8_vManage", "vm-chi-11"),
            (address("192.168.10.1"), "100.64.12.5"),
            (address("10.106.66.55"), "10.30.200.14"),
            (address("10.110.35.124"), "10.30.1.19"),
        ],
        users=("admin", "svc.license"),
        rename=[
            (r"vmanage-server\.log$", "vmanage-server.log.1"),
            (r"^captures/tcpdump-eth0\.txt$", "out1.txt"),
        ],
        note="SYNs dropped at another site: other addresses, user, an earlier year, zone EST; the Manager log is the rotated `.1` and the capture is `out1.txt`.",
    ),
    Variant(
        name="net-003-dns-variant",
        source="net-003-dns",
        year=2023,
        days=700,  # 2023-02-07 -> 2025-01-07
        zone=("IST", "JST"),
        replace=[
            (r"um8_vManage", "vmanage-sjc-1"),
            (r"ssm-onprem\.example\.local", "smartlic.branch.example.org"),
            (address("10.66.76.1"), "172.31.0.2"),
            (address("10.110.35.124"), "172.31.4.50"),
        ],
        users=("admin", "jdoe"),
        rename=[
            (r"vmanage-server\.log$", "vmanage-server.log.1"),
            (r"^captures/nslookup\.txt$", "case-files/lookup-output.txt"),
            (r"^captures/ping-ssm-onprem\.txt$", "case-files/out2.txt"),
        ],
        note="a name that does not resolve at another site: another SSM On-Prem name and DNS server, user, date, and a Manager in Tokyo (JST); captures under arbitrary names.",
    ),
    Variant(
        name="ssm-onprem-001-upstream-down-variant",
        source="ssm-onprem-001-upstream-down",
        year=2023,
        days=300,  # 2023-04-18 -> 2024-02-12, EST
        zone=("IST", "EST"),
        replace=[
            (r"um8_vManage", "vmanage-par-2"),
            (address("192.168.10.1"), "10.12.0.33"),
            (address("10.106.66.55"), "10.12.250.8"),
            (address("10.110.35.124"), "10.12.7.7"),
            (r"SSM-On-Prem", "satellite-lic"),
            (r"ssm-onprem\.example\.local", "satellite-lic.example.com"),
            (r"ssm-on-prem", "satellite-lic.example.com"),
        ],
        users=("admin", "licadmin2"),
        rename=[(r"^manager/var/log/nms/vmanage-server\.log$", "manager/var/log/nms/vmanage-server.log.1")],
        note="SSM On-Prem's application down at another site: other names, addresses, user, date, Manager zone EST (SSM On-Prem in UTC); the Manager log is the rotated `.1`.",
    ),
    Variant(
        name="ssm-onprem-001-retried-variant",
        source="ssm-onprem-001-retried",
        year=2026,
        days=-150,  # 2026-11-24 -> 2026-06-27, New York on EDT
        zone=("IST", "EDT"),
        replace=[
            (r"um8_vManage", "vmanage-nj-5"),
            (address("10.66.76.85"), "172.20.14.9"),
            (address("10.106.66.55"), "172.20.90.3"),
            (r"ssm-onprem\.example\.local", "licensing.nj.example.org"),
            (r"ssm-onprem", "licensing-nj"),
        ],
        users=("admin", "sdwan.lic"),
        rename=[
            (r"^licensing-nj/var/log/nginx/error\.log$", "licensing-nj/var/log/nginx/error.log.1"),
            (r"^manager/var/log/nms/vmanage-server\.log$", "manager/var/log/nms/vmanage-server.log.1"),
        ],
        note="a retried nginx upstream at another site: other names, addresses, user, date, Manager zone EDT; the nginx and Manager logs are the rotated `.1`.",
    ),
    Variant(
        name="lic-006-online-airgap-variant",
        source="lic-006-online-airgap",
        year=2026,
        days=90,  # 2026-11-24 -> 2027-02-22
        zone=("IST", "UTC"),
        replace=[
            (r"um8_vManage", "vmanage-syd-2"),
            (address("10.66.76.1"), "10.8.0.53"),
        ],
        users=("admin", "noc"),
        rename=[
            (r"^manager/user-settings\.json$", "settings/license-settings.json"),
            (r"^captures/nslookup-cloudsso\.txt$", "ticket-5521/nslookup.txt"),
            (r"^captures/dig-cloudsso\.txt$", "ticket-5521/dig-out.txt"),
            (r"^captures/ping-cloudsso\.txt$", "ticket-5521/ping.txt"),
        ],
        note="online mode in an air gap at another site: other Manager, DNS server, user, date, zone UTC; captures under other names.",
    ),
    Variant(
        name="time-001-clock-skew-variant",
        source="time-001-clock-skew",
        year=2025,
        days=-120,  # 2025-03-04 -> 2024-11-04, EST
        zone=("CET", "EST"),
        replace=[
            (r"vm-fra-01", "vm-bos-04"),
            (r"ssm-fra", "ssm-bos"),
            (r"ssm\.fra\.example\.net", "ssm.bos.example.com"),
            (address("10.77.0.123"), "10.88.1.1"),
        ],
        users=("netops", "kwong"),
        rename=[
            (r"^manager/show-clock\.txt$", "manager/out1.txt"),
            (r"^ssm-onprem/date\.txt$", "ssm-onprem/clock.log"),
        ],
        note="clocks hours apart at another site: Manager in EST instead of CET (its times moved with the zone, so the skew is the same), SSM On-Prem in UTC, another date and names; the clock readings saved under other names.",
    ),
]


def main():
    for variant in VARIANTS:
        write_variant(variant)
        print(f"wrote corpus/{variant.name}")


if __name__ == "__main__":
    main()
