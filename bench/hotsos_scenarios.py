#!/usr/bin/env python3
"""Run hotsos's scenario engine on data roots, the way hotsos's own scenario
tests run it (tests/unit/utils.py: `use_all_logs`, only the scenario files
under test loaded, plugins' "runnable" checks bypassed), and print what it
raised as JSON, one line per data root:

    python3 bench/hotsos_scenarios.py SCENARIO_LIST ROOT...

SCENARIO_LIST is a file of scenario paths relative to hotsos's
defs/scenarios (e.g. `juju/bugs/lp1812361.yaml`), one a line. Used by
bench/hotsos.sh with hotsos from PyPI (it needs the `hotsos` package).
The plain `hotsos` command would skip most of these scenarios on a test
bundle: a plugin runs only when the data root looks like a host running
that application (`--force` does not change that).
"""
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from unittest import mock

import hotsos
from hotsos.core.config import HotSOSConfig
from hotsos.core.issues import IssuesManager
from hotsos.core.log import LoggingManager
from hotsos.core.ycheck.common import GlobalSearcher
from hotsos.core.ycheck.engine.common import YDefsLoader
from hotsos.core.ycheck.scenarios import YScenarioChecker

DEFS = os.path.join(os.path.dirname(hotsos.__file__), "defs")


def run_root(root, by_plugin):
    raised = []
    for plugin, rels in sorted(by_plugin.items()):
        wanted = {os.path.join(DEFS, "scenarios", plugin, r) for r in rels}
        gtmp = tempfile.mkdtemp()
        ptmp = tempfile.mkdtemp(dir=gtmp)
        HotSOSConfig.reset()
        HotSOSConfig.set(data_root=root, plugin_name=plugin, plugin_yaml_defs=DEFS, part_name="scenarios",
                         use_all_logs=True, force_mode=True, machine_readable=True,
                         global_tmp_dir=gtmp, plugin_tmp_dir=ptmp)
        is_def = staticmethod(lambda p, wanted=wanted: p in wanted)
        with mock.patch.object(YDefsLoader, "_is_def", new=is_def):
            with GlobalSearcher() as searcher:
                YScenarioChecker(searcher).run()
        for kind, items in (("bug", IssuesManager().load_bugs()), ("issue", IssuesManager().load_issues())):
            for section in items.values():
                for item in section:
                    raised.append({"kind": kind, "id": item.get("id") or item.get("type"), "message": item.get("message") or item.get("desc")})
        shutil.rmtree(gtmp)
    return raised


def main():
    scenarios = [l.strip() for l in open(sys.argv[1], encoding="utf-8") if l.strip() and not l.startswith("#")]
    by_plugin = defaultdict(list)
    for s in scenarios:
        plugin, _, rel = s.partition("/")
        by_plugin[plugin].append(rel)
    os.environ["HOTSOS_DISABLE_AFFINITY"] = "True"
    LoggingManager().start(level=40)
    for root in sys.argv[2:]:
        t0 = time.monotonic()
        raised = run_root(os.path.abspath(root), by_plugin)
        print(json.dumps({"root": root, "seconds": round(time.monotonic() - t0, 4), "raised": raised}), flush=True)


if __name__ == "__main__":
    main()
