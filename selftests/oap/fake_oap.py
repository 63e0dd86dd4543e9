#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A second, independent OAP decoder for the selftests.

Debian's python3-grpcio serves EBPFAccessLogService/collect and
MeterReportService/collect{,Batch} with stubs that grpc_tools.protoc generates
from the project's proto/ into a temporary directory at start. Every message
becomes one NDJSON line, as fake_oap (C) writes it:

  {"call": 1, "method": "/skywalking.v3.EBPFAccessLogService/collect",
   "auth": "token", "seq": 0, "msg": {...MessageToDict, .proto field names...}}

plus {"call": N, ..., "event": "start"|"end"|"rejected", "status": S,
"messages": M} lines.

usage: fake_oap.py --port-file PATH --out PATH [--listen ADDR:PORT] [--token T]
"""
import argparse
import importlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent import futures

PROTOS = ["common/Common.proto", "common/Command.proto",
          "language-agent/Meter.proto", "ebpf/accesslog.proto"]


def generate_stubs(proto_dir, out_dir):
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + proto_dir,
                    "--python_out=" + out_dir, "--grpc_python_out=" + out_dir] + PROTOS,
                   check=True)
    # The generated modules import each other as packages: common.Common_pb2
    # (protoc names the language-agent directory language_agent).
    for sub in ("common", "language_agent", "ebpf"):
        open(os.path.join(out_dir, sub, "__init__.py"), "a").close()
    sys.path.insert(0, out_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--token")
    parser.add_argument("--proto-dir", default=os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))), "proto"))
    args = parser.parse_args()

    import grpc
    from google.protobuf import json_format

    tmp = tempfile.mkdtemp(prefix="kaccess-fake-oap-py-")
    generate_stubs(args.proto_dir, tmp)
    accesslog_pb2 = importlib.import_module("ebpf.accesslog_pb2")
    accesslog_grpc = importlib.import_module("ebpf.accesslog_pb2_grpc")
    meter_pb2 = importlib.import_module("language_agent.Meter_pb2")
    meter_grpc = importlib.import_module("language_agent.Meter_pb2_grpc")
    command_pb2 = importlib.import_module("common.Command_pb2")
    shutil.rmtree(tmp)  # loaded: a killed decoder leaves nothing behind

    out = open(args.out, "a")
    lock = threading.Lock()
    call_ids = itertools.count(1)

    def write(obj):
        with lock:
            out.write(json.dumps(obj, separators=(",", ":")) + "\n")
            out.flush()

    def serve(method, requests, context):
        call = next(call_ids)
        auth = dict(context.invocation_metadata()).get("authentication")
        head = {"call": call, "method": method, "auth": auth}
        if args.token is not None and auth != args.token:
            write(dict(head, event="rejected", status=grpc.StatusCode.UNAUTHENTICATED.value[0],
                       messages=0))
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong or missing authentication token")
        write(dict(head, event="start", status=0, messages=0))
        seq = 0
        for msg in requests:
            write(dict(head, seq=seq, msg=json_format.MessageToDict(
                msg, preserving_proto_field_name=True)))
            seq += 1
        write(dict(head, event="end", status=0, messages=seq))

    class AccessLog(accesslog_grpc.EBPFAccessLogServiceServicer):
        def collect(self, request_iterator, context):
            serve("/skywalking.v3.EBPFAccessLogService/collect", request_iterator, context)
            return accesslog_pb2.EBPFAccessLogDownstream()

    class Meter(meter_grpc.MeterReportServiceServicer):
        def collect(self, request_iterator, context):
            serve("/skywalking.v3.MeterReportService/collect", request_iterator, context)
            return command_pb2.Commands()

        def collectBatch(self, request_iterator, context):
            serve("/skywalking.v3.MeterReportService/collectBatch", request_iterator, context)
            return command_pb2.Commands()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    accesslog_grpc.add_EBPFAccessLogServiceServicer_to_server(AccessLog(), server)
    meter_grpc.add_MeterReportServiceServicer_to_server(Meter(), server)
    port = server.add_insecure_port(args.listen)
    server.start()
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(args.port_file + ".tmp", args.port_file)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
