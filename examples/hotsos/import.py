#!/usr/bin/env python3
"""Write the corpus of the hotsos port: one bundle per hotsos scenario test.

    python3 examples/hotsos/import.py [HOTSOS_DIR]

HOTSOS_DIR is a checkout of canonical/hotsos (default: the copy of commit
57b256c under ../shared/data/hotsos next to this repository). For each test
of PURE_LOG below it writes examples/hotsos/corpus/<name>/:

- bundle/: the test's inline `data-root` files, plus `sos_commands/date/date`
  (hotsos's test harness always copies it from its default data root,
  tests/unit/fake_data_root/openstack, unless the test writes its own). The
  other files a test copies (uptime, sos_commands/dpkg, systemd, ps, a
  cgroup file) serve hotsos checks outside the scenario under test and are
  left out.
- expected.json: what hotsos's test expects (its raised-issues/raised-bugs,
  verbatim) and what that means for the ported rules: the rules ported from
  the scenario, which of them must fire, and the key values each message
  must state (or must not).

Deterministic: the same input gives the same bytes. The files it writes are
copied from hotsos (Apache-2.0, see examples/hotsos/LICENSE.hotsos).
"""
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_HOTSOS = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "hotsos"))

# tests/unit/fake_data_root/openstack/sos_commands/date/date at 57b256c
DEFAULT_DATE = "Thu Feb 10 16:19:17 UTC 2022\n"

# test (under hotsos/defs/tests/scenarios) -> {rule id: [key values]} of the
# rules that must fire, and values a message must not state
PURE_LOG = {
    "juju/bugs/lp1812361": {"HOTSOS-JUJU-LP1812361": ["1812361"]},
    "juju/bugs/lp1858519": {"HOTSOS-JUJU-LP1858519": ["1858519", "ceph-osd/1"]},
    "juju/bugs/lp1895040": {"HOTSOS-JUJU-LP1895040": ["1895040", "2.9.13"]},
    "juju/bugs/lp1910958": {"HOTSOS-JUJU-LP1910958": ["1910958", "unit-rabbitmq-server-0", "236", "2.8.5"]},
    "juju/bugs/lp1948906": {"HOTSOS-JUJU-LP1948906": ["1948906", "designate-bind/1"]},
    "juju/bugs/lp1983140": {"HOTSOS-JUJU-LP1983140": ["1983140"]},
    "juju/bugs/lp1983506": {"HOTSOS-JUJU-LP1983506": ["1983506"]},
    "juju/bugs/lp1996230": {"HOTSOS-JUJU-LP1996230": ["1996230"]},
    "juju/charm_unit_checks": {"HOTSOS-JUJU-CHARM-UNIT-CHECKS-UNITS-HAVE-LEADERSHIP-ERRORS": ["'keystone'", "7 days"]},
    "juju/charm_unit_checks_outside_time": {},
    "juju/charm_unit_checks_tracebacks": {
        "HOTSOS-JUJU-CHARM-UNIT-CHECKS-UNITS-HAVE-TRACEBACKS": ["foo/0", "vault/0", "2 Traceback(s)", "!bar/0"]
    },
    "kernel/disk_failure": {"HOTSOS-KERNEL-DISK-FAILURE-FAILING-DISK": ["device sdk"]},
    "kernel/disk_failure_2": {"HOTSOS-KERNEL-DISK-FAILURE-BLOCK-IO-ERROR": ["'I/O'", "device sdk"]},
    "kernel/disk_failure_3": {"HOTSOS-KERNEL-DISK-FAILURE-FAILING-DISK": ["device sdb"]},
    "kernel/qla2xxx": {"HOTSOS-KERNEL-QLA2XXX": ["[0000:04:00.0]-0122:1", "!0122:10"]},
    "landscape/bugs/lp2081056": {"HOTSOS-LANDSCAPE-LP2081056": ["2081056", "24.04.7-0landscape0"]},
    "maas/maas_proxy_issue": {"HOTSOS-MAAS-MAAS-PROXY-ISSUE": ["api.snapcraft.io:443"]},
    "mysql/bugs/lp2039444": {"HOTSOS-MYSQL-LP2039444": ["2039444"]},
    "mysql/bugs/lp372017": {"HOTSOS-MYSQL-LP372017": ["372017", "MDEV-26784"]},
    "openstack/neutron/bugs/lp1883089": {"HOTSOS-OPENSTACK-NEUTRON-LP1883089": ["1883089"]},
    "openstack/neutron/bugs/lp1896506": {"HOTSOS-OPENSTACK-NEUTRON-LP1896506": ["1896506"]},
    "openstack/neutron/bugs/lp1928031": {"HOTSOS-OPENSTACK-NEUTRON-LP1928031": ["1928031"]},
    "openstack/neutron/bugs/lp1929832": {"HOTSOS-OPENSTACK-NEUTRON-LP1929832": ["1929832"]},
    "openstack/neutron/bugs/lp1948466": {"HOTSOS-OPENSTACK-NEUTRON-LP1948466": ["1948466"]},
    "openstack/neutron/bugs/lp1965297": {"HOTSOS-OPENSTACK-NEUTRON-LP1965297": ["1965297"]},
    "openstack/neutron/bugs/lp1979089": {"HOTSOS-OPENSTACK-NEUTRON-LP1979089": ["1979089"]},
    "openstack/neutron/bugs/lp1993628": {"HOTSOS-OPENSTACK-NEUTRON-LP1993628": ["1993628"]},
    "openstack/neutron/bugs/lp2017748": {"HOTSOS-OPENSTACK-NEUTRON-LP2017748": ["2017748"]},
    "openstack/nova/bugs/lp1860743": {"HOTSOS-OPENSTACK-NOVA-LP1860743": ["1860743"]},
    "openstack/nova/bugs/lp1904580": {"HOTSOS-OPENSTACK-NOVA-LP1904580": ["1904580", "/var/lib/nova/.ssh/id_rsa", "0644", "0600"]},
    "openstack/nova/bugs/lp1944619": {"HOTSOS-OPENSTACK-NOVA-LP1944619": ["1944619"]},
    "openstack/openstack_charms/nova_cc_ssh_known_hosts_fail": {
        "HOTSOS-OPENSTACK-OPENSTACK-CHARMS-NOVA-CC-SSH-KNOWN-HOSTS-FAIL": ["host 10.11.12.2"]
    },
    "rabbitmq/bugs/lp1943937": {"HOTSOS-RABBITMQ-LP1943937": ["1943937"]},
    "rabbitmq/cluster_logchecks": {
        "HOTSOS-RABBITMQ-CLUSTER-LOGCHECKS-CLUSTER-HAS-HAD-PARTIONS": ["partitions"],
        "HOTSOS-RABBITMQ-CLUSTER-LOGCHECKS-CLUSTER-SYNC-ISSUES": ["no replicas available for promotion"],
        "HOTSOS-RABBITMQ-CLUSTER-LOGCHECKS-CLUSTER-DISCARD-MESSAGES": ["Messages were discarded"],
    },
    "storage/nfs/nfs-name-or-service-not-known": {
        "HOTSOS-STORAGE-NFS-NFS-DETECT-MOUNT-NAME-RESOLUTION-FAILURE": ["my.another.great.nfs.org", "my.great.nfsserver.org"]
    },
    "storage/nfs/nfs-temporary-name-resolution-failure": {
        "HOTSOS-STORAGE-NFS-NFS-DETECT-MOUNT-NAME-RESOLUTION-FAILURE": ["filesrv23", "filesrv24"]
    },
    "system/rsyslog-read-syslog-false": {},
    "system/rsyslog-read-syslog": {"HOTSOS-SYSTEM-RSYSLOG-READ-SYSLOG": ["/var/log/syslog"]},
}

# a file name hotsos's test writes literally that is no good in a repository
RENAME = {"var/log/juju/unit-nova-cloud-controller-*.log": "var/log/juju/unit-nova-cloud-controller-0.log"}


def rule_ids(scenario_rel, scenario):
    """HOTSOS- + the scenario's path (without `bugs/`), plus the conclusion's
    name when the scenario raises more than one."""
    parts = [p for p in scenario_rel[: -len(".yaml")].split("/") if p != "bugs"]
    base = "HOTSOS-" + "-".join(parts).upper().replace("_", "-")
    conclusions = list(scenario.get("conclusions", {}))
    if len(conclusions) == 1:
        return [base]
    return [base + "-" + c.upper().replace("_", "-") for c in conclusions]


def folded(s):
    return re.sub(r"\s+", " ", s).strip()


def main():
    hotsos = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_HOTSOS
    defs = os.path.join(hotsos, "hotsos", "defs")
    out_root = os.path.join(HERE, "corpus")
    for test_rel, raised in PURE_LOG.items():
        test_path = os.path.join(defs, "tests", "scenarios", test_rel + ".yaml")
        with open(test_path, encoding="utf-8") as f:
            test = yaml.safe_load(f)
        target = test.get("target-name") or os.path.basename(test_rel) + ".yaml"
        scenario_rel = os.path.join(os.path.dirname(test_rel), target)
        with open(os.path.join(defs, "scenarios", scenario_rel), encoding="utf-8") as f:
            scenario = yaml.safe_load(f)
        rules = rule_ids(scenario_rel, scenario)
        assert set(raised) <= set(rules), (test_rel, raised, rules)

        name = test_rel.replace("/", "-")
        bundle = os.path.join(out_root, name, "bundle")
        files = dict(test["data-root"].get("files", {}))
        files.setdefault("sos_commands/date/date", DEFAULT_DATE)
        written = []
        for path, content in sorted(files.items()):
            path = RENAME.get(path, path)
            dst = os.path.join(bundle, path)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "w", encoding="utf-8", newline="\n") as f:
                f.write(content)
            written.append(path)

        doc = {
            "note": "What hotsos's scenario test expects, and what that means for the ported rules. "
            "Written by examples/hotsos/import.py from hotsos (Apache-2.0, canonical/hotsos @ 57b256c).",
            "test": "hotsos/defs/tests/scenarios/" + test_rel + ".yaml",
            "scenario": "hotsos/defs/scenarios/" + scenario_rel,
            # every rule ported from the scenario: those not under "raised" must not fire
            "rules": rules,
            # the test's inline files, and the date file hotsos's harness adds
            "files": written,
        }
        copied = [p for p in test["data-root"].get("copy-from-original", []) if p != "sos_commands/date/date"]
        if copied:
            # copied by hotsos's test from its fake data root for checks outside this scenario
            doc["left_out"] = copied
        for p in test["data-root"].get("files", {}):
            if p in RENAME:
                doc["renamed"] = {p: RENAME[p]}
        # the rules that must fire, each with the values its message must state
        # (a leading "!": must not state)
        doc["raised"] = [{"rule": rule, "key_values": values} for rule, values in raised.items()]
        doc["hotsos"] = [
            {"kind": kind, "key": key, "message": folded(msg)}
            for kind in ("raised-bugs", "raised-issues")
            for key, msgs in (test.get(kind) or {}).items()
            for msg in (msgs if isinstance(msgs, list) else [msgs])
        ]
        with open(os.path.join(out_root, name, "expected.json"), "w", encoding="utf-8", newline="\n") as f:
            json.dump(doc, f, indent=2, ensure_ascii=False)
            f.write("\n")
        print(f"{name}: {', '.join(written)}")


if __name__ == "__main__":
    main()
