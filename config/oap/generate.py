#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Generate kaccess's OAP-side files from the 296 metrics of OAP's ebpf.oal.

Reads oap-metrics.tsv (metric, scope, aggregation, value, filter) and writes,
next to this script:

  meters.tsv                               each OAL metric -> kaccess metric,
                                           the meters kaccess sends, labels
  meter-analyzer-config/kaccess-*.yaml     MAL rules (one file per entity kind;
                                           kaccess-instance-relation: OAP >= 11)
  dashboards/10/*.json, dashboards/11/*.json   UI templates

The files are committed; selftests/test_oap_rules.py checks them against the
facts of reference/oap-meter-rules.md and that this script still writes them.

usage: config/oap/generate.py [OAP_METRICS_TSV] [OUT_DIR]
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))

# Labels on every per-connection meter kaccess sends. svc/pod: the local side
# (service "[cluster::]name.namespace", pod); src_*/dst_*: the relation's
# source and destination by OAP's rule (role server: source = remote);
# side: client|server (the connection's role); component: OAP's component id
# of the relation (49 http, 129 https, 110 tcp, 130 tls), one per src/dst pair.
CONNECTION_LABELS = ["svc", "pod", "src_svc", "src_pod", "dst_svc", "dst_pod", "side", "component"]
# Endpoint meters: server side HTTP exchanges only, the endpoint "METHOD:path".
ENDPOINT_LABELS = ["svc", "endpoint"]

# OAL value -> the per-interval sum kaccess sends (units in the names).
VALUE_METERS = {
    "connect.duration": "kaccess_connect_duration_ns",
    "accept.duration": "kaccess_accept_duration_ns",
    "close.duration": "kaccess_close_duration_ns",
    "write.duration": "kaccess_write_duration_ns",
    "write.l4.duration": "kaccess_write_l4_duration_ns",
    "write.l4.transmitPackageCount": "kaccess_write_l4_packets",
    "write.l4.retransmitPackageCount": "kaccess_write_l4_retransmit_packets",
    "write.l4.totalPackageSize": "kaccess_write_l4_bytes",
    "write.l3.duration": "kaccess_write_l3_duration_ns",
    "write.l3.localDuration": "kaccess_write_l3_local_duration_ns",
    "write.l3.outputDuration": "kaccess_write_l3_output_duration_ns",
    "write.l3.resolveMACCount": "kaccess_write_l3_resolve_mac_count",
    "write.l3.resolveMACDuration": "kaccess_write_l3_resolve_mac_duration_ns",
    "write.l3.netFilterCount": "kaccess_write_l3_netfilter_count",
    "write.l3.netFilterDuration": "kaccess_write_l3_netfilter_duration_ns",
    "write.l2.duration": "kaccess_write_l2_duration_ns",
    "write.l2.enterQueueBufferCount": "kaccess_write_l2_enter_queue_buffers",
    "write.l2.readySendDuration": "kaccess_write_l2_ready_send_duration_ns",
    "write.l2.networkDeviceSendDuration": "kaccess_write_l2_net_device_send_duration_ns",
    "read.duration": "kaccess_read_duration_ns",
    "read.l4.duration": "kaccess_read_l4_duration_ns",
    "read.l3.duration": "kaccess_read_l3_duration_ns",
    "read.l3.rcvDuration": "kaccess_read_l3_rcv_duration_ns",
    "read.l3.localDuration": "kaccess_read_l3_local_duration_ns",
    "read.l3.netFilterCount": "kaccess_read_l3_netfilter_count",
    "read.l3.netFilterDuration": "kaccess_read_l3_netfilter_duration_ns",
    "read.l2.packageCount": "kaccess_read_l2_packets",
    "read.l2.totalPackageSize": "kaccess_read_l2_bytes",
    "read.l2.packageToQueueDuration": "kaccess_read_l2_to_queue_duration_ns",
    "read.l2.rcvPackageFromQueueDuration": "kaccess_read_l2_from_queue_duration_ns",
    "protocol.http.latency": "kaccess_http_latency_ms",
    "protocol.http.sizeOfRequestHeader": "kaccess_http_request_header_bytes",
    "protocol.http.sizeOfRequestBody": "kaccess_http_request_body_bytes",
    "protocol.http.sizeOfResponseHeader": "kaccess_http_response_header_bytes",
    "protocol.http.sizeOfResponseBody": "kaccess_http_response_body_bytes",
}

# scope -> (OAL name prefix, rule file, metricPrefix, entity labels, expSuffix or None)
SCOPES = {
    "K8SService": ("kubernetes_service_", "kaccess-service", "kaccess_k8s_svc", ["svc"],
                   "service(['svc'], Layer.K8S_SERVICE)"),
    "K8SServiceInstance": ("kubernetes_service_instance_", "kaccess-instance", "kaccess_k8s_inst",
                           ["svc", "pod"], "instance(['svc'], ['pod'], Layer.K8S_SERVICE)"),
    "K8SEndpoint": ("kubernetes_service_endpoint_", "kaccess-endpoint", "kaccess_k8s_ep",
                    ["svc", "endpoint"], "endpoint(['svc'], ['endpoint'], Layer.K8S_SERVICE)"),
    "K8SServiceRelation": ("kubernetes_service_relation_", "kaccess-service-relation",
                           "kaccess_k8s_svc_rel", ["src_svc", "dst_svc", "component"], None),
    "K8SServiceInstanceRelation": ("kubernetes_service_instance_relation_",
                                   "kaccess-instance-relation", "kaccess_k8s_inst_rel",
                                   ["src_svc", "src_pod", "dst_svc", "dst_pod", "component"], None),
}
# UI entity names of the scopes, dashboards per OAP version.
ENTITIES = {"K8SService": "Service", "K8SServiceInstance": "ServiceInstance",
            "K8SEndpoint": "Endpoint", "K8SServiceRelation": "ServiceRelation",
            "K8SServiceInstanceRelation": "ServiceInstanceRelation"}
OAP11_ONLY = {"K8SServiceInstanceRelation"}
# Instance relations need a pod on both ends: kaccess sends src_pod/dst_pod
# empty for a peer that is no pod (a ClusterIP without a known backend, a node
# address, Unknown), and serviceInstanceRelation would make an instance with an
# empty name of it. Those peers still count in the service relation rules.
POD_LESS_PEER_FILTER = {
    "K8SServiceInstanceRelation": ".tagNotEqual('src_pod', '').tagNotEqual('dst_pod', '')",
}
# OAP forms no service, instance or endpoint for a local side that is
# Unknown (k8s_unselected_pod_rule = unknown names pods so); such a pod's
# flows still count in the relation rules.
LOCAL_UNKNOWN_FILTER = {
    scope: ".tagNotEqual('svc', 'Unknown')" for scope in ("K8SService", "K8SServiceInstance", "K8SEndpoint")
}
PERCENTILES = "[50, 75, 90, 95, 99]"


def read_metrics(path):
    rows = []
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            if line.strip():
                rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    return rows


def parse_filter(text):
    """OAL filter -> (event, side, condition) with condition one of None,
    'success', 'connect_success', '1xx'..'5xx'."""
    event, side, cond = None, None, None
    for term in [t.strip() for t in text.split("&") if t.strip()]:
        if term.startswith("event="):
            event = term.split("=", 1)[1]
        elif term.startswith("side="):
            side = term.split("=", 1)[1].lower()
        elif term == "proto=http":
            pass
        elif term in ("protocol.success==true",):
            cond = "success"
        elif term == "connect.success==true":
            cond = "connect_success"
        elif "statusCode>=" in term:
            cond = "%dxx" % (int(term.split(">=")[1]) // 100)
        elif "statusCode<" in term:
            pass
        else:
            raise ValueError("unknown filter term %r" % term)
    return event, side, cond


def family(scope, name):
    """'kaccess_http' or 'kaccess_endpoint_http' style base for HTTP meters."""
    return "kaccess_endpoint_http" if scope == "K8SEndpoint" else "kaccess_http"


def count_meter(scope, event, cond):
    if event in (None, "http", "protocol"):
        base = family(scope, None)
        if cond == "success":
            return base + "_success_count"
        if cond and cond.endswith("xx"):
            return base + "_status_%s_count" % cond
        return base + "_count"
    if cond == "connect_success":
        return "kaccess_connect_success_count"
    return "kaccess_%s_count" % event


def value_meter(scope, value):
    value = {"duration": "protocol.http.latency", "http.latency": "protocol.http.latency"}.get(value, value)
    if value.startswith("http."):
        value = "protocol." + value
    meter = VALUE_METERS[value]
    if scope == "K8SEndpoint":
        meter = meter.replace("kaccess_http_", "kaccess_endpoint_http_")
    return meter


def relation_call(scope, side, event):
    # The detect point is a constant per rule: side-less kernel metrics take
    # the side that makes the syscall (connect: client; accept, close: server).
    point = side or ("client" if event == "connect" else "server")
    dp = "DetectPoint.%s" % point.upper()
    if scope == "K8SServiceRelation":
        return "serviceRelation(%s, ['src_svc'], ['dst_svc'], '.', Layer.K8S_SERVICE, 'component')" % dp
    return ("serviceInstanceRelation(%s, ['src_svc'], ['src_pod'], ['dst_svc'], ['dst_pod'], "
            "'.', Layer.K8S_SERVICE, 'component')" % dp)


def rule_for(row):
    scope = row["scope"]
    prefix, _, _, labels, suffix = SCOPES[scope]
    agg, value = row["aggregation"], row["value"]
    event, side, cond = parse_filter(row["filter"])
    sel = ".tagEqual('side', '%s')" % side if side and scope != "K8SEndpoint" else ""
    sel += POD_LESS_PEER_FILTER.get(scope, "") + LOCAL_UNKNOWN_FILTER.get(scope, "")
    lab = "[%s]" % ", ".join("'%s'" % l for l in labels)
    hist_lab = "[%s]" % ", ".join("'%s'" % l for l in labels + ["le"])
    note = ""

    def agg_of(meter):
        return "%s%s.sum(%s)" % (meter, sel, lab)

    count = count_meter(scope, event, cond)
    if agg == "cpm":
        reads = [count]
        exp = agg_of(count) + ".downsampling(SUM_PER_MIN)"
    elif agg == "sum":
        meter = value_meter(scope, value)
        reads = [meter]
        exp = agg_of(meter) + ".downsampling(SUM)"
    elif agg == "longAvg":
        meter = value_meter(scope, value)
        if (row["metric"].endswith("read_rcv_package_from_queue_time") and
                scope in ("K8SService", "K8SServiceInstance")):
            meter = VALUE_METERS["read.l2.rcvPackageFromQueueDuration"]
            note = "OAL reads packageToQueueDuration here (OAP defect); kaccess reads the receive-from-queue time"
        reads = [meter, count]
        exp = "%s / %s" % (agg_of(meter), agg_of(count))
    elif agg.startswith("percent("):
        ok = count_meter(scope, event, "success")
        reads = [ok, count]
        exp = "%s / %s * 10000" % (agg_of(ok), agg_of(count))
    elif agg.startswith("apdex("):
        base = family(scope, None)
        sat, tol = base + "_apdex_satisfied_count", base + "_apdex_tolerating_count"
        reads = [sat, tol, count]
        exp = "(%s + %s / 2) / %s * 10000" % (agg_of(sat), agg_of(tol), agg_of(count))
        note = "apdex at OAP's default 500 ms threshold, counted by kaccess"
    elif agg.startswith("percentile2("):
        meter = family(scope, None) + "_latency_ms_histogram"
        reads = [meter]
        exp = ("%s%s.sum(%s).histogram().histogram_percentile(%s).downsampling(SUM)"
               % (meter, sel, hist_lab, PERCENTILES))
    else:
        raise ValueError("unknown aggregation %r" % agg)
    if suffix is None:
        exp = "(%s).%s" % (exp, relation_call(scope, side, event))
    name = row["metric"][len(prefix):]
    used = sorted(set(labels + (["side"] if "'side'" in sel else []) +
                      (["le"] if "histogram" in exp else [])))
    return name, exp, reads, used, note


def yaml_quote(text):
    assert '"' not in text and "\\" not in text
    return '"' + text + '"'


def write_rules(out_dir, rules):
    os.makedirs(os.path.join(out_dir, "meter-analyzer-config"), exist_ok=True)
    for scope, (_, file, metric_prefix, _, suffix) in SCOPES.items():
        lines = ["# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)",
                 "# kaccess pre-aggregated metrics, %s. Generated by config/oap/generate.py"
                 % ENTITIES[scope],
                 "# from OAP's ebpf.oal metric list; see config/oap/README.md." +
                 (" OAP >= 11 only." if scope in OAP11_ONLY else ""),
                 "metricPrefix: %s" % metric_prefix]
        if suffix:
            lines.append("expSuffix: %s" % yaml_quote(suffix))
        lines.append("metricsRules:")
        for name, exp in rules[scope]:
            lines.append("  - name: %s" % name)
            lines.append("    exp: %s" % yaml_quote(exp))
        with open(os.path.join(out_dir, "meter-analyzer-config", file + ".yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")


def widget(i, title, expression, unit):
    return {
        "x": (i % 4) * 6, "y": (i // 4) * 12, "w": 6, "h": 12, "i": str(i), "type": "Widget",
        "widget": {"title": title},
        "graph": {"type": "Line", "step": False, "smooth": False, "showSymbol": True,
                  "showXAxis": True, "showYAxis": True},
        "expressions": [expression],
        "metricConfig": [{"unit": unit}] if unit else [],
    }


def unit_of(name):
    for suffix, unit in (("_cpm", "calls / min"), ("_time", "ns"), ("_duration", "ns"),
                         ("_size", "bytes"), ("_rate", "%"), ("_apdex", "")):
        if name.endswith(suffix):
            return unit
    return ""


def write_dashboards(out_dir, stored):
    for version in ("10", "11"):
        directory = os.path.join(out_dir, "dashboards", version)
        os.makedirs(directory, exist_ok=True)
        for scope, names in stored.items():
            if version == "10" and scope in OAP11_ONLY:
                continue
            children = []
            for i, name in enumerate(names):
                expr = name
                if name.endswith("_percentile"):
                    expr = "%s{p='50,75,90,95,99'}" % name
                elif name.endswith("_rate") or name.endswith("_apdex"):
                    expr = "%s/100" % name
                children.append(widget(i, name, expr, unit_of(name)))
            entity = ENTITIES[scope]
            template = [{
                "id": "kaccess-k8s-%s" % entity.lower(),
                "configuration": {
                    "children": children,
                    "layer": "K8S_SERVICE",
                    "entity": entity,
                    "name": "kaccess-%s" % entity,
                    "isRoot": False,
                },
            }]
            with open(os.path.join(directory, "kaccess-%s.json" % entity.lower()), "w") as f:
                json.dump(template, f, indent=2)
                f.write("\n")


def main():
    tsv = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "..", "..", "..", "shared", "reference", "oap-metrics.tsv")
    out_dir = sys.argv[2] if len(sys.argv) > 2 else HERE
    rows = read_metrics(tsv)
    rules = {scope: [] for scope in SCOPES}
    stored = {scope: [] for scope in SCOPES}
    table = ["oap_metric\tscope\tkaccess_metric\trule_file\tmeters\tlabels\tnote"]
    for row in rows:
        scope = row["scope"]
        name, exp, reads, used, note = rule_for(row)
        rules[scope].append((name, exp))
        full = "%s_%s" % (SCOPES[scope][2], name)
        stored[scope].append(full)
        table.append("\t".join([row["metric"], scope, full, SCOPES[scope][1], ",".join(reads),
                                ",".join(used), note]))
    write_rules(out_dir, rules)
    write_dashboards(out_dir, stored)
    with open(os.path.join(out_dir, "meters.tsv"), "w") as f:
        f.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
