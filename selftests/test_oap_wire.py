#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The project's .proto files against SkyWalking's wire facts.

Compiles proto/ with grpc_tools.protoc into a descriptor set and compares,
both ways, every message field (number, type, label, oneof), every enum value
and every RPC with reference/skywalking-wire.tsv. Prints TAP.

usage: test_oap_wire [WIRE_TSV]   (default: ../shared/reference/skywalking-wire.tsv,
                                   or $KACCESS_WIRE_TSV)
"""
import os
import subprocess
import sys
import tempfile


def find_repo():
    """selftests/.. in the tree, or $(OUTPUT)/selftests/../.. once copied
    (whose proto/ holds generated C), or the directory run.sh runs from."""
    here = os.path.dirname(os.path.realpath(__file__))
    for base in (os.path.dirname(here), os.path.dirname(os.path.dirname(here)), os.getcwd()):
        if os.path.exists(os.path.join(base, "proto", "ebpf", "accesslog.proto")):
            return base
    return os.getcwd()


REPO = find_repo()
PROTO_DIR = os.path.join(REPO, "proto")
PROTO_FILES = ["common/Common.proto", "common/Command.proto",
               "language-agent/Meter.proto", "ebpf/accesslog.proto"]

SCALARS = {
    1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 8: "bool",
    9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32", 16: "sfixed64",
    17: "sint32", 18: "sint64", 6: "fixed64", 7: "fixed32",
}
TYPE_MESSAGE, TYPE_ENUM, LABEL_REPEATED = 11, 14, 3

results = []


def check(ok, name, detail=""):
    results.append((ok, name, detail))


def default_tsv():
    env = os.environ.get("KACCESS_WIRE_TSV")
    if env:
        return env
    for base in (REPO, os.getcwd()):
        path = os.path.join(base, "..", "shared", "reference", "skywalking-wire.tsv")
        if os.path.exists(path):
            return os.path.normpath(path)
    return "/work/shared/reference/skywalking-wire.tsv"


def load_descriptors(tmp):
    from google.protobuf import descriptor_pb2
    out = os.path.join(tmp, "set.pb")
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I" + PROTO_DIR,
           "--include_imports", "--descriptor_set_out=" + out] + PROTO_FILES
    subprocess.run(cmd, check=True)
    fds = descriptor_pb2.FileDescriptorSet()
    with open(out, "rb") as f:
        fds.ParseFromString(f.read())
    return fds


def proto_facts(fds):
    """(kind, owner, name) -> (number, type, file) from the descriptors."""
    facts = {}
    packages = set()

    def type_name(field, msg):
        if field.type in (TYPE_MESSAGE, TYPE_ENUM):
            text = field.type_name.rsplit(".", 1)[-1]
        else:
            text = SCALARS[field.type]
        if field.label == LABEL_REPEATED:
            text = "repeated " + text
        if field.HasField("oneof_index"):
            text += " (oneof %s)" % msg.oneof_decl[field.oneof_index].name
        return text

    for f in fds.file:
        base = os.path.basename(f.name)
        packages.add((f.name, f.package))
        for msg in f.message_type:
            check(len(msg.nested_type) == 0 and len(msg.enum_type) == 0,
                  "%s has no nested types" % msg.name)
            for field in msg.field:
                facts[("field", msg.name, field.name)] = (str(field.number),
                                                          type_name(field, msg), base)
        for enum in f.enum_type:
            for value in enum.value:
                facts[("enum", enum.name, value.name)] = (str(value.number), "", base)
        for svc in f.service:
            for m in svc.method:
                path = "/%s.%s/%s" % (f.package, svc.name, m.name)
                inp = ("stream " if m.client_streaming else "") + m.input_type.rsplit(".", 1)[-1]
                outp = ("stream " if m.server_streaming else "") + m.output_type.rsplit(".", 1)[-1]
                facts[("rpc", path, inp)] = ("->", outp, base)
    return facts, packages


def tsv_facts(path):
    facts = {}
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        assert header[:6] == ["kind", "message_or_rpc", "name", "number", "type", "file"], header
        for line in f:
            if not line.strip():
                continue
            kind, owner, name, number, typ, file = line.rstrip("\n").split("\t")
            facts[(kind, owner, name)] = (number, typ, file)
    return facts


def main():
    tsv = sys.argv[1] if len(sys.argv) > 1 else default_tsv()
    if not os.path.exists(tsv):
        print("TAP version 13\n1..1\nok 1 proto/ matches skywalking-wire.tsv # SKIP %s missing" % tsv)
        return 0
    try:
        import grpc_tools  # noqa: F401  (Debian's python3-grpc-tools)
    except ImportError:
        print("TAP version 13\n1..1\nok 1 proto/ matches skywalking-wire.tsv # SKIP needs python3-grpc-tools")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fds = load_descriptors(tmp)
    mine, packages = proto_facts(fds)
    theirs = tsv_facts(tsv)

    for fname, pkg in sorted(packages):
        check(pkg == "skywalking.v3", "%s is in package skywalking.v3" % fname, pkg)
    # One result per message, enum and RPC, naming every difference.
    owners = sorted({(k[0], k[1]) for k in list(theirs) + list(mine)})
    for kind, owner in owners:
        problems = []
        for key in sorted(k for k in set(theirs) | set(mine) if k[:2] == (kind, owner)):
            got, want = mine.get(key), theirs.get(key)
            if got != want:
                problems.append("%s: proto/ has %s, TSV has %s" % (key[2], got, want))
        rows = sum(1 for k in theirs if k[:2] == (kind, owner))
        check(not problems, "%s %s matches the TSV (%d rows)" % (kind, owner, rows),
              "; ".join(problems))
    # Empty messages have no row: the response of the access-log RPC is one.
    names = {m.name: m for f in fds.file for m in f.message_type}
    check("EBPFAccessLogDownstream" in names and not names["EBPFAccessLogDownstream"].field,
          "EBPFAccessLogDownstream is an empty message")

    print("TAP version 13")
    print("1..%d" % len(results))
    failed = 0
    for i, (ok, name, detail) in enumerate(results, 1):
        print("%s %d %s" % ("ok" if ok else "not ok", i, name))
        if not ok:
            failed += 1
            print("# %s" % detail)
    print("# %d checks against %s, %d failed" % (len(results), tsv, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
