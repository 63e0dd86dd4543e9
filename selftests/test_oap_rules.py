#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""kaccess's OAP-side files (config/oap/) against what OAP accepts.

Checks, from reference/oap-meter-rules.md and oap-metrics.tsv:
  - rule files: only the keys every recent OAP allows, metricPrefix set,
    rules of name + exp only, names in OAP's alphabet
  - stored names (metricPrefix_name) unique, none of the 296 OAL names, and
    no OAL name starts with a kaccess prefix
  - every meter a rule reads is one kaccess sends (meters.tsv) with the labels
    the rule uses; never a `service`/`instance` label, `le` only on histograms;
    downsampling functions that exist
  - meters.tsv maps each of the 296 OAL metrics exactly once, to its rule
  - dashboards parse, one template each, unique ids and layer/entity/name, no
    root, only metrics the rules define (the 10.x set without OAP 11's
    instance relations)
  - every meter an instance-relation rule reads drops pod-less peers
    (empty src_pod or dst_pod) before it is aggregated, as
    serviceInstanceRelation needs a pod on both ends
  - config/oap/generate.py still writes exactly these files
Prints TAP.
"""
import filecmp
import glob
import json
import os
import re
import subprocess
import sys
import tempfile


def find_repo():
    here = os.path.dirname(os.path.realpath(__file__))
    for base in (os.path.dirname(here), os.path.dirname(os.path.dirname(here)), os.getcwd()):
        if os.path.exists(os.path.join(base, "config", "oap", "meters.tsv")):
            return base
    return os.getcwd()


REPO = find_repo()
OAP_DIR = os.path.join(REPO, "config", "oap")
ALLOWED_KEYS = {"metricPrefix", "expSuffix", "expPrefix", "filter", "metricsRules"}
NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DOWNSAMPLING = {"AVG", "SUM", "LATEST", "SUM_PER_MIN", "MAX", "MIN"}
OAP11_ONLY_FILES = {"kaccess-instance-relation"}
# Pod labels that must be non-empty, per rule file (the instance relation's
# source and destination instance labels).
REQUIRED_POD_LABELS = {"kaccess-instance-relation": ("src_pod", "dst_pod")}

results = []


def check(ok, name, detail=""):
    results.append((bool(ok), name, detail))


def metrics_tsv():
    env = os.environ.get("KACCESS_OAP_METRICS_TSV")
    candidates = [env] if env else []
    candidates += [os.path.join(REPO, "..", "shared", "reference", "oap-metrics.tsv"),
                   "/work/shared/reference/oap-metrics.tsv"]
    for path in candidates:
        if path and os.path.exists(path):
            return os.path.normpath(path)
    return None


def read_tsv(path):
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        return [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f if line.strip()]


def labels_in(exp):
    """Every label name an expression mentions."""
    labels = set()
    for group in re.findall(r"\[([^\]]*)\]", exp):
        labels.update(re.findall(r"'([^']*)'", group))
    labels.update(re.findall(r"tag(?:Equal|NotEqual|Match|NotMatch)\('([^']*)'", exp))
    labels.update(re.findall(r"Layer\.\w+, '([^']*)'\)", exp))  # the component label
    return labels


def unfiltered_pod_reads(exp, pod_labels):
    """Meters that exp reads without dropping samples whose pod labels are
    empty: each read is the chain from the meter name to its .sum(, and it
    must hold tagNotEqual('<label>', '') for every pod label."""
    unfiltered = []
    for read in re.finditer(r"\b(kaccess_\w+)((?:\.tag\w+\([^)]*\))*)\.sum\(", exp):
        filters = re.findall(r"\.tagNotEqual\('(\w+)', ''\)", read.group(2))
        if not set(pod_labels) <= set(filters):
            unfiltered.append(read.group(1))
    reads = len(re.findall(r"\bkaccess_\w+\s*\.", exp))
    chains = len(re.findall(r"\b(kaccess_\w+)((?:\.tag\w+\([^)]*\))*)\.sum\(", exp))
    if chains != reads:  # a read not aggregated by .sum( cannot be checked
        unfiltered.append("a read without .sum(")
    return unfiltered


def check_pod_filter_detects_missing():
    """The filter check itself, on rules it must reject and one it must pass."""
    labels = ("src_pod", "dst_pod")
    relation = ".serviceInstanceRelation(DetectPoint.SERVER, ['src_svc'], ['src_pod'], ['dst_svc'], ['dst_pod'], '.', Layer.K8S_SERVICE, 'component')"
    bad = "(kaccess_read_count.tagEqual('side', 'server').sum(['src_pod', 'dst_pod']))" + relation
    half = ("(kaccess_read_duration_ns.tagNotEqual('src_pod', '').tagNotEqual('dst_pod', '').sum(['src_pod'])"
            " / kaccess_read_count.tagNotEqual('src_pod', '').sum(['src_pod']))" + relation)
    good = "(kaccess_read_count.tagNotEqual('dst_pod', '').tagNotEqual('src_pod', '').sum(['src_pod']))" + relation
    check(unfiltered_pod_reads(bad, labels) == ["kaccess_read_count"] and
          unfiltered_pod_reads(half, labels) == ["kaccess_read_count"] and
          unfiltered_pod_reads(good, labels) == [],
          "pod-less peer check rejects a rule without the filter",
          "bad %s, half %s, good %s" % (unfiltered_pod_reads(bad, labels),
                                        unfiltered_pod_reads(half, labels),
                                        unfiltered_pod_reads(good, labels)))


def check_rule_file(path, oal_names, rows_by_metric, stored):
    import yaml
    base = os.path.basename(path)[:-len(".yaml")]
    with open(path) as f:
        doc = yaml.safe_load(f)
    check(isinstance(doc, dict) and set(doc) <= ALLOWED_KEYS,
          "%s: only allowed keys" % base, str(sorted(doc)))
    prefix = doc.get("metricPrefix")
    check(prefix and NAME_RE.match(prefix), "%s: metricPrefix set" % base, str(prefix))
    check(not any(name.startswith(prefix) for name in oal_names),
          "%s: no OAL name starts with %s" % (base, prefix))
    suffix = doc.get("expSuffix", "")
    problems = []
    for rule in doc.get("metricsRules", []):
        if set(rule) != {"name", "exp"} or not NAME_RE.match(str(rule.get("name"))):
            problems.append("bad rule %r" % rule)
            continue
        full = "%s_%s" % (prefix, rule["name"])
        exp = "(%s).%s" % (rule["exp"], suffix) if suffix else rule["exp"]
        if full in stored:
            problems.append("%s defined twice" % full)
        if full in oal_names:
            problems.append("%s is an OAL name" % full)
        stored[full] = base
        row = rows_by_metric.get(full)
        if not row:
            problems.append("%s not in meters.tsv" % full)
            continue
        if row["rule_file"] != base:
            problems.append("%s: meters.tsv says file %s" % (full, row["rule_file"]))
        sent = set(row["meters"].split(","))
        read = set(re.findall(r"\b(kaccess_\w+)\s*\.", rule["exp"]))
        if read != sent:
            problems.append("%s reads %s, meters.tsv lists %s" % (full, sorted(read), sorted(sent)))
        used = labels_in(exp)
        allowed = set(row["labels"].split(","))
        if not used <= allowed:
            problems.append("%s uses labels %s not sent" % (full, sorted(used - allowed)))
        if used & {"service", "instance"}:
            problems.append("%s uses a reserved label" % full)
        if "le" in used and "histogram()" not in exp:
            problems.append("%s: le without a histogram" % full)
        for fn in re.findall(r"downsampling\((\w+)\)", exp):
            if fn not in DOWNSAMPLING or ("histogram()" in exp and fn not in ("AVG", "SUM")):
                problems.append("%s: downsampling(%s)" % (full, fn))
        if "Relation(" in exp and base not in ("kaccess-service-relation", "kaccess-instance-relation"):
            problems.append("%s: relation outside the relation files" % full)
        if "serviceInstanceRelation(" in exp and base not in OAP11_ONLY_FILES:
            problems.append("%s: serviceInstanceRelation outside the OAP 11 file" % full)
        if exp.count("(") != exp.count(")"):
            problems.append("%s: unbalanced parentheses" % full)
        if base in REQUIRED_POD_LABELS:
            unfiltered = unfiltered_pod_reads(rule["exp"], REQUIRED_POD_LABELS[base])
            if unfiltered:
                problems.append("%s keeps pod-less peers in %s" % (full, unfiltered))
    check(not problems, "%s: %d rules read meters kaccess sends, with its labels"
          % (base, len(doc.get("metricsRules", []))), "; ".join(problems[:5]))


def check_dashboards(stored):
    seen_ids, seen_keys = {}, set()
    for version in ("10", "11"):
        files = sorted(glob.glob(os.path.join(OAP_DIR, "dashboards", version, "*.json")))
        check(files, "dashboards for OAP %s exist" % version)
        for path in files:
            name = "dashboards/%s/%s" % (version, os.path.basename(path))
            problems = []
            try:
                with open(path) as f:
                    doc = json.load(f)
            except ValueError as e:
                check(False, "%s parses" % name, str(e))
                continue
            if not (isinstance(doc, list) and len(doc) == 1):
                check(False, "%s is an array of one template" % name)
                continue
            tpl = doc[0]
            cfg = tpl.get("configuration", {})
            for key in ("layer", "entity", "name", "children"):
                if key not in cfg:
                    problems.append("no configuration.%s" % key)
            if "isRoot" not in cfg and "isDefault" not in cfg:
                problems.append("neither isRoot nor isDefault")
            if cfg.get("isRoot"):
                problems.append("a second root for %s" % cfg.get("layer"))
            key = (version, cfg.get("layer"), cfg.get("entity"), cfg.get("name"))
            if key in seen_keys or seen_ids.get((version, tpl.get("id"))):
                problems.append("id or layer/entity/name repeated")
            seen_keys.add(key)
            seen_ids[(version, tpl.get("id"))] = True
            for child in cfg.get("children", []):
                for expr in child.get("expressions", []):
                    for metric in re.findall(r"\b(kaccess_\w+)", expr):
                        if metric not in stored:
                            problems.append("%s undefined" % metric)
                        elif version == "10" and stored[metric] in OAP11_ONLY_FILES:
                            problems.append("%s only exists on OAP 11" % metric)
            check(not problems, "%s: %d widgets on defined metrics" % (name, len(cfg.get("children", []))),
                  "; ".join(problems[:5]))


def check_generated(tsv):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.join(OAP_DIR, "generate.py"), tsv, tmp], check=True)
        stale = []
        for root, _, files in os.walk(tmp):
            for file in files:
                rel = os.path.relpath(os.path.join(root, file), tmp)
                if not filecmp.cmp(os.path.join(root, file), os.path.join(OAP_DIR, rel), shallow=False):
                    stale.append(rel)
        check(not stale, "config/oap is what generate.py writes", ", ".join(stale))


def main():
    try:
        import yaml  # noqa: F401  (Debian's python3-yaml)
    except ImportError:
        print("TAP version 13\n1..1\nok 1 config/oap rule files and dashboards # SKIP needs python3-yaml")
        return 0
    tsv = metrics_tsv()
    if not tsv:
        print("TAP version 13\n1..1\nok 1 config/oap rule files and dashboards # SKIP reference/oap-metrics.tsv not found")
        return 0
    oal = read_tsv(tsv)
    oal_names = {row["metric"] for row in oal}
    rows = read_tsv(os.path.join(OAP_DIR, "meters.tsv"))
    check(len(oal) == 296 and len(oal_names) == 296, "oap-metrics.tsv has 296 names")
    mapped = [row["oap_metric"] for row in rows]
    check(sorted(mapped) == sorted(oal_names),
          "meters.tsv maps each of the 296 OAL metrics once",
          "missing %s, extra %s" % (sorted(oal_names - set(mapped))[:3],
                                    sorted(set(mapped) - oal_names)[:3]))
    scope_of = {row["metric"]: row["scope"] for row in oal}
    check(all(scope_of.get(r["oap_metric"]) == r["scope"] for r in rows), "meters.tsv scopes match")
    rows_by_metric = {row["kaccess_metric"]: row for row in rows}
    stored = {}
    files = sorted(glob.glob(os.path.join(OAP_DIR, "meter-analyzer-config", "*.yaml")))
    check(any(os.path.basename(f) == "kaccess-instance-relation.yaml" for f in files),
          "instance-relation rules in their own file (OAP >= 11)")
    check_pod_filter_detects_missing()
    for path in files:
        check_rule_file(path, oal_names, rows_by_metric, stored)
    check(sorted(stored) == sorted(rows_by_metric), "every meters.tsv row has its rule",
          str(sorted(set(rows_by_metric) - set(stored))[:3]))
    bad = [m for r in rows for m in r["meters"].split(",") + r["labels"].split(",")
           if not NAME_RE.match(m)]
    check(not bad, "meter and label names in OAP's alphabet", str(bad[:3]))
    check_dashboards(stored)
    check_generated(tsv)

    print("TAP version 13")
    print("1..%d" % len(results))
    failed = 0
    for i, (ok, name, detail) in enumerate(results, 1):
        print("%s %d %s" % ("ok" if ok else "not ok", i, name))
        if not ok:
            failed += 1
            print("# %s" % detail)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
