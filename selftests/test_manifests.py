#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""
The deployment files, checked without a cluster or a container engine:
the DaemonSet manifest (deploy/kaccess-daemonset.yaml), its config, the
systemd unit, the Containerfile and `make install`.

Prints TAP like the other selftests. Run from the repository root (run.sh
does): `make selftests` copies this file to $(OUTPUT)/selftests/test_manifests.
The YAML checks SKIP when python3-yaml is missing (`make deps-test`); the
real install SKIPs when $(OUTPUT)/kaccess has not been built.
"""
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    yaml = None

MANIFEST = "deploy/kaccess-daemonset.yaml"
CONTAINERFILE = "deploy/Containerfile"
UNIT = "deploy/kaccess.service"
SHIPPED_CONFIG = "config/kaccess.conf"

NAMESPACE = "kaccess"
CONFIGMAP = "kaccess-config"
CONFIG_FILE_KEY = "kaccess.conf"
AGENT_PATH = "/usr/local/sbin/kaccess"
CONFIG_PATH = "/etc/kaccess/kaccess.conf"
AGENT_COMMAND = [AGENT_PATH, "--config", CONFIG_PATH]
METRICS_PORT = 9810
EXPECTED_KINDS = ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                  "ConfigMap", "DaemonSet"]
# Kubernetes spells capabilities without CAP_, systemd with it.
CAPABILITIES = {"BPF", "PERFMON", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"}
# hostPath -> read-only; each is mounted at the same path in the container.
HOST_PATHS = {
    "/sys/kernel/btf": True,
    "/sys/fs/cgroup": True,
    "/sys/kernel/tracing": True,
    "/sys/fs/bpf": False,
}
# What the DaemonSet's config sets; every other key keeps its default.
CONFIG_OVERRIDES = {
    "output": "none",
    "http_listen": "0.0.0.0:%d" % METRICS_PORT,
    "pin_dir": "/sys/fs/bpf/kaccess",
    "interval_s": "60",
}
# systemd hardening that would break bpf(), pinning or setns().
UNIT_FORBIDDEN = ["PrivateDevices", "ProtectKernelTunables", "ProtectControlGroups",
                  "PrivateNetwork", "RestrictNamespaces", "SystemCallFilter", "PrivateUsers"]
MAKE_TIMEOUT_S = 300


class Failure(Exception):
    """A check that did not hold; the message is the TAP diagnostic."""


class Skip(Exception):
    """A prerequisite is missing; the message is the SKIP reason."""


def expect(condition, message):
    if not condition:
        raise Failure(message)


def expect_equal(actual, expected, what):
    if actual != expected:
        raise Failure("%s: expected %r, got %r" % (what, expected, actual))


# ---- inputs ---------------------------------------------------------------------

def output_dir():
    """$(OUTPUT) as make names it: the copy lives in $(OUTPUT)/selftests."""
    here = sys.argv[0]
    if here.endswith(".py"):  # run from the source tree
        return os.environ.get("OUTPUT", ".output")
    path = os.path.dirname(os.path.dirname(here))
    return path or "."


def read_text(path):
    with open(path, encoding="utf-8") as file:
        return file.read()


_documents = None


def documents(full_error=False):
    """Every document of the manifest; Failure when one does not parse."""
    global _documents
    if yaml is None:
        raise Skip("python3-yaml is not installed (make deps-test)")
    if _documents is None:
        try:
            _documents = list(yaml.safe_load_all(read_text(MANIFEST)))
        except yaml.YAMLError as error:
            _documents = error
    if isinstance(_documents, Exception):
        if full_error:
            raise Failure("%s does not parse: %s" % (MANIFEST, _documents))
        raise Failure("%s does not parse (manifests.every_yaml_document_parses)" % MANIFEST)
    return _documents


def the_object(kind):
    found = [doc for doc in documents() if isinstance(doc, dict) and doc.get("kind") == kind]
    expect(len(found) == 1, "expected one %s in %s, found %d" % (kind, MANIFEST, len(found)))
    return found[0]


def pod_spec():
    return the_object("DaemonSet")["spec"]["template"]["spec"]


def the_container():
    containers = pod_spec().get("containers") or []
    expect(len(containers) == 1, "expected one container, found %d" % len(containers))
    return containers[0]


def parse_config(text, where):
    """`key = value` lines as the agent reads them: {key: value}, [keys in order]."""
    values, order = {}, []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        expect("=" in line, "%s:%d: not 'key = value': %r" % (where, number, line))
        key, value = (part.strip() for part in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        expect(key not in values, "%s:%d: key %r set twice" % (where, number, key))
        values[key] = value
        order.append(key)
    return values, order


def configmap_config_text():
    data = the_object("ConfigMap").get("data") or {}
    expect(CONFIG_FILE_KEY in data, "ConfigMap %s has no %s" % (CONFIGMAP, CONFIG_FILE_KEY))
    return data[CONFIG_FILE_KEY]


def unit_settings():
    """{(section, key): [values]} of the systemd unit, in order."""
    settings, section = {}, None
    for line in read_text(UNIT).splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        settings.setdefault((section, key.strip()), []).append(value.strip())
    return settings


def unit_capabilities(settings, key):
    """The set a unit's repeated capability settings add up to."""
    caps = set()
    for value in settings.get(("Service", key), []):
        expect(value and not value.startswith("~"), "%s=%s: expected a plain list" % (key, value))
        caps.update(value.split())
    return caps


QUANTITY_SUFFIXES = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9,
                     "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(value, what):
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(m|k|M|G|Ki|Mi|Gi|)", str(value))
    expect(match is not None, "%s: %r is not a Kubernetes quantity" % (what, value))
    return float(match.group(1)) * QUANTITY_SUFFIXES[match.group(2)]


def probe_port(probe, ports, what):
    port = probe["httpGet"]["port"]
    if isinstance(port, str):
        expect(port in ports, "%s: no container port named %r" % (what, port))
        return ports[port]
    return port


def containerfile_stages():
    """[(image, name, [instructions])] with continuation lines joined."""
    text = re.sub(r"\\\n", " ", read_text(CONTAINERFILE))
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append((parts[0], name, []))
        else:
            expect(stages, "%s: %r before the first FROM" % (CONTAINERFILE, line))
            stages[-1][2].append((word.upper(), rest.strip()))
    return stages


def linked_libraries(binary):
    """Resolved paths of the shared libraries `binary` needs directly."""
    result = subprocess.run(["objdump", "-p", binary], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, universal_newlines=True)
    needed = [line.split()[1] for line in result.stdout.splitlines()
              if line.strip().startswith("NEEDED")]
    ldd = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         universal_newlines=True).stdout
    paths = {}
    for line in ldd.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>":
            paths[parts[0]] = parts[2]
    return [paths[name] for name in needed if name in paths]


def loaded_libraries(binary):
    """Resolved paths of every shared library `binary` loads, its libraries' included."""
    ldd = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         universal_newlines=True).stdout
    return [parts[2] for parts in (line.split() for line in ldd.splitlines())
            if len(parts) >= 3 and parts[1] == "=>"]


def owning_package(path):
    """The Debian package that owns `path` (without :arch), None for glibc's own."""
    real = os.path.realpath(path)
    for candidate in (path, real, real.replace("/usr/lib/", "/lib/", 1)):
        result = subprocess.run(["dpkg", "-S", candidate], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, universal_newlines=True)
        if result.returncode == 0:
            package = result.stdout.split(":")[0].strip()
            return None if package in ("libc6",) else package
    return None


def run_make(args, destdir):
    """make with DESTDIR and this OUTPUT, never rebuilding the agent (-o)."""
    output = output_dir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "V")}
    command = ["make", "--no-print-directory", "-o", output + "/kaccess"] + args + \
        ["DESTDIR=" + destdir, "OUTPUT=" + output]
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=MAKE_TIMEOUT_S)
    if result.returncode != 0:
        raise Failure("%s exited %d:\n%s" % (" ".join(command), result.returncode,
                                             result.stdout.strip()))
    return result.stdout


def built_agent():
    path = output_dir() + "/kaccess"
    if not os.access(path, os.X_OK):
        raise Skip("%s is not built (make)" % path)
    return path


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


DEFAULT_INSTALLED = {
    "binary": "/usr/local/sbin/kaccess",
    "config": "/etc/kaccess/kaccess.conf",
    "unit": "/usr/local/lib/systemd/system/kaccess.service",
    "readme": "/usr/local/share/doc/kaccess/README.md",
}


def exec_start(unit_path):
    lines = [line for line in read_text(unit_path).splitlines() if line.startswith("ExecStart=")]
    expect(len(lines) == 1, "%s: expected one ExecStart=, found %d" % (unit_path, len(lines)))
    return lines[0][len("ExecStart="):].split()


# ---- the checks -----------------------------------------------------------------

TESTS = []


def test(function):
    TESTS.append(function)
    return function


@test
def every_yaml_document_parses():
    docs = documents(full_error=True)
    expect(docs, "%s has no documents" % MANIFEST)
    seen = set()
    for index, doc in enumerate(docs, 1):
        expect(isinstance(doc, dict), "document %d is %r, not an object" % (index, type(doc).__name__))
        for field in ("apiVersion", "kind", "metadata"):
            expect(field in doc, "document %d has no %s" % (index, field))
        name = doc["metadata"].get("name")
        expect(isinstance(name, str) and name, "document %d (%s) has no name" % (index, doc["kind"]))
        expect((doc["kind"], name) not in seen, "%s %s defined twice" % (doc["kind"], name))
        seen.add((doc["kind"], name))
    # The API server takes only strings here: an unquoted 9810 or true fails.
    def check_string_maps(node, where):
        if isinstance(node, dict):
            for field in ("labels", "annotations", "matchLabels", "nodeSelector"):
                strings = node.get(field)
                if not isinstance(strings, dict):
                    continue
                for key, value in strings.items():
                    expect(isinstance(value, str), "%s: %s %s=%r is not a string" % (where, field, key, value))
            for key, value in node.items():
                check_string_maps(value, where)
        elif isinstance(node, list):
            for value in node:
                check_string_maps(value, where)
    for doc in docs:
        check_string_maps(doc, "%s %s" % (doc["kind"], doc["metadata"]["name"]))


@test
def the_six_kinds_are_present_in_namespace_kaccess():
    kinds = sorted(doc["kind"] for doc in documents())
    expect_equal(kinds, sorted(EXPECTED_KINDS), "kinds")
    expect_equal(the_object("Namespace")["metadata"]["name"], NAMESPACE, "Namespace name")
    for kind in ("ServiceAccount", "ConfigMap", "DaemonSet"):
        expect_equal(the_object(kind)["metadata"].get("namespace"), NAMESPACE, kind + " namespace")
    expect_equal(the_object("ConfigMap")["metadata"]["name"], CONFIGMAP, "ConfigMap name")
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        expect("namespace" not in the_object(kind)["metadata"], kind + " is cluster-scoped")


@test
def cluster_role_only_reads_pods_and_services():
    role = the_object("ClusterRole")
    expect("aggregationRule" not in role, "ClusterRole aggregates other roles")
    granted = set()
    for rule in role.get("rules") or []:
        expect(set(rule) <= {"apiGroups", "resources", "verbs"},
               "rule has %s" % sorted(set(rule) - {"apiGroups", "resources", "verbs"}))
        expect_equal(rule.get("apiGroups"), [""], "rule apiGroups (the core group only)")
        for resource in rule.get("resources") or []:
            expect(resource in ("pods", "services"), "rule grants resource %r" % resource)
            for verb in rule.get("verbs") or []:
                expect(verb in ("get", "list", "watch"), "rule grants verb %r" % verb)
                granted.add((resource, verb))
    expected = {(r, v) for r in ("pods", "services") for v in ("get", "list", "watch")}
    expect_equal(sorted(granted), sorted(expected), "granted (resource, verb)")


@test
def service_account_binding_and_daemonset_refer_to_each_other():
    account = the_object("ServiceAccount")
    role = the_object("ClusterRole")
    binding = the_object("ClusterRoleBinding")
    daemonset = the_object("DaemonSet")
    expect_equal(binding.get("roleRef"), {"apiGroup": "rbac.authorization.k8s.io",
                                          "kind": "ClusterRole", "name": role["metadata"]["name"]},
                 "ClusterRoleBinding roleRef")
    expect_equal(binding.get("subjects"), [{"kind": "ServiceAccount",
                                            "name": account["metadata"]["name"],
                                            "namespace": account["metadata"]["namespace"]}],
                 "ClusterRoleBinding subjects")
    expect_equal(daemonset["metadata"]["namespace"], account["metadata"]["namespace"],
                 "DaemonSet namespace (the ServiceAccount's)")
    expect_equal(pod_spec().get("serviceAccountName"), account["metadata"]["name"],
                 "DaemonSet serviceAccountName")
    selector = daemonset["spec"]["selector"]["matchLabels"]
    labels = daemonset["spec"]["template"]["metadata"]["labels"]
    expect(selector and selector.items() <= labels.items(),
           "DaemonSet selector %r does not select its pods' labels %r" % (selector, labels))
    config_volumes = [v for v in pod_spec().get("volumes") or [] if "configMap" in v]
    expect_equal([v["configMap"].get("name") for v in config_volumes], [CONFIGMAP],
                 "ConfigMap volumes")


@test
def daemonset_runs_on_every_node_in_host_pid_and_network():
    spec = pod_spec()
    expect_equal(spec.get("hostPID"), True, "hostPID")
    expect_equal(spec.get("hostNetwork"), True, "hostNetwork")
    expect_equal(spec.get("dnsPolicy"), "ClusterFirstWithHostNet", "dnsPolicy")
    expect_equal(spec.get("priorityClassName"), "system-node-critical", "priorityClassName")
    expect_equal(spec.get("nodeSelector"), {"kubernetes.io/os": "linux"}, "nodeSelector")
    expect({"operator": "Exists"} in (spec.get("tolerations") or []),
           "no toleration of every taint ({operator: Exists}): %r" % spec.get("tolerations"))
    strategy = the_object("DaemonSet")["spec"].get("updateStrategy") or {}
    expect_equal(strategy.get("rollingUpdate", {}).get("maxSurge", 0), 0,
                 "maxSurge (two agents on one node)")


@test
def container_runs_the_agent_unprivileged_read_only():
    container = the_container()
    expect_equal((container.get("command") or []) + (container.get("args") or []), AGENT_COMMAND,
                 "command line")
    expect_equal(container.get("image"), "kaccess:0.1.0", "image")
    context = container.get("securityContext") or {}
    expect(context.get("privileged") is not True, "the container is privileged")
    expect_equal(context.get("allowPrivilegeEscalation"), False, "allowPrivilegeEscalation")
    expect_equal(context.get("readOnlyRootFilesystem"), True, "readOnlyRootFilesystem")
    expect_equal(context.get("runAsUser"), 0, "runAsUser")
    expect(not (pod_spec().get("securityContext") or {}).get("runAsNonRoot"),
           "the pod's securityContext sets runAsNonRoot")


@test
def capabilities_drop_all_and_add_exactly_the_five():
    capabilities = (the_container().get("securityContext") or {}).get("capabilities") or {}
    expect_equal(capabilities.get("drop"), ["ALL"], "capabilities.drop")
    added = capabilities.get("add") or []
    expect_equal(len(added), len(set(added)), "capabilities.add without duplicates")
    expect_equal(set(added), CAPABILITIES, "capabilities.add")


@test
def host_paths_run_and_config_are_mounted_as_specified():
    volumes = {v["name"]: v for v in pod_spec().get("volumes") or []}
    mounts = {m["mountPath"]: m for m in the_container().get("volumeMounts") or []}
    host_paths = {}
    for name, volume in volumes.items():
        if "hostPath" in volume:
            host_paths[volume["hostPath"]["path"]] = name
    expect_equal(sorted(host_paths), sorted(HOST_PATHS), "hostPath volumes")
    for path, read_only in HOST_PATHS.items():
        mount = mounts.get(path)
        expect(mount is not None, "%s is not mounted at %s" % (path, path))
        expect_equal(mount["name"], host_paths[path], "volume mounted at " + path)
        expect_equal(bool(mount.get("readOnly", False)), read_only, path + " readOnly")
        # Bidirectional (or HostToContainer) propagation needs privileged.
        expect("mountPropagation" not in mount, path + " sets mountPropagation")
    run = mounts.get("/run")
    expect(run is not None, "nothing mounted at /run (the lock file)")
    expect("emptyDir" in volumes.get(run["name"], {}), "/run is not an emptyDir")
    expect(not run.get("readOnly"), "/run is read-only")
    config = mounts.get(os.path.dirname(CONFIG_PATH))
    expect(config is not None, "nothing mounted at " + os.path.dirname(CONFIG_PATH))
    expect_equal(volumes.get(config["name"], {}).get("configMap", {}).get("name"), CONFIGMAP,
                 "volume at " + os.path.dirname(CONFIG_PATH))
    expect("subPath" not in config, "a subPath mount would not see ConfigMap updates")
    expect_equal(sorted(mounts), sorted(list(HOST_PATHS) + ["/run", os.path.dirname(CONFIG_PATH)]),
                 "mount paths")


@test
def resource_requests_and_limits_are_set():
    resources = the_container().get("resources") or {}
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            expect(resource in (resources.get(kind) or {}), "no %s.%s" % (kind, resource))
    for resource in ("cpu", "memory"):
        request = quantity(resources["requests"][resource], "requests." + resource)
        limit = quantity(resources["limits"][resource], "limits." + resource)
        expect(request <= limit, "requests.%s above limits.%s" % (resource, resource))
    # The maps alone take ~30 MiB of the memory cgroup at the defaults.
    expect(quantity(resources["limits"]["memory"], "limits.memory") >= 96 * 2**20,
           "limits.memory below the maps' ~30 MiB plus headroom")


@test
def probes_use_healthz_and_readyz_on_the_metrics_port():
    container = the_container()
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
    expect_equal(ports.get("metrics"), METRICS_PORT, "container port 'metrics'")
    for probe_name, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        probe = container.get(probe_name)
        expect(probe and "httpGet" in probe, "no httpGet " + probe_name)
        expect_equal(probe["httpGet"].get("path"), path, probe_name + " path")
        expect_equal(probe_port(probe, ports, probe_name), METRICS_PORT, probe_name + " port")
        expect(probe.get("periodSeconds"), probe_name + " has no periodSeconds")
    expect(container["readinessProbe"].get("initialDelaySeconds", 0) <
           container["livenessProbe"].get("initialDelaySeconds", 0),
           "liveness starts before readiness: a slow load would be killed")


@test
def pods_carry_the_prometheus_annotations():
    annotations = the_object("DaemonSet")["spec"]["template"]["metadata"].get("annotations") or {}
    expect_equal(annotations.get("prometheus.io/scrape"), "true", "prometheus.io/scrape")
    expect_equal(annotations.get("prometheus.io/port"), str(METRICS_PORT), "prometheus.io/port")
    expect_equal(annotations.get("prometheus.io/path"), "/metrics", "prometheus.io/path")


@test
def configmap_config_uses_only_known_keys_and_serves_metrics():
    shipped, _ = parse_config(read_text(SHIPPED_CONFIG), SHIPPED_CONFIG)
    values, _ = parse_config(configmap_config_text(), "ConfigMap " + CONFIG_FILE_KEY)
    unknown = sorted(set(values) - set(shipped))
    expect(not unknown, "keys that %s does not define: %s" % (SHIPPED_CONFIG, ", ".join(unknown)))
    for key, value in CONFIG_OVERRIDES.items():
        expect_equal(values.get(key), value, "ConfigMap " + key)


@test
def configmap_config_documents_every_other_key_at_its_default():
    shipped, _ = parse_config(read_text(SHIPPED_CONFIG), SHIPPED_CONFIG)
    text = configmap_config_text()
    values, _ = parse_config(text, "ConfigMap " + CONFIG_FILE_KEY)
    missing = sorted(set(shipped) - set(values))
    expect(not missing, "keys of %s missing from the ConfigMap: %s" % (SHIPPED_CONFIG, ", ".join(missing)))
    for key, value in values.items():
        if key not in CONFIG_OVERRIDES and key in shipped:
            expect_equal(value, shipped[key], "ConfigMap %s (the default)" % key)
    previous = ""
    for line in text.splitlines():
        line = line.strip()
        if "=" in line and not line.startswith("#"):
            key = line.split("=", 1)[0].strip()
            expect(previous.startswith("#"), "ConfigMap key %s has no comment above it" % key)
        if line:
            previous = line


@test
def systemd_unit_has_the_daemonset_capabilities():
    settings = unit_settings()
    expected = {"CAP_" + cap for cap in CAPABILITIES}
    expect_equal(unit_capabilities(settings, "CapabilityBoundingSet"), expected,
                 "CapabilityBoundingSet")
    expect_equal(unit_capabilities(settings, "AmbientCapabilities"), expected,
                 "AmbientCapabilities")
    added = set((the_container().get("securityContext") or {}).get("capabilities", {}).get("add") or [])
    expect_equal({"CAP_" + cap for cap in added}, expected, "the DaemonSet's capabilities")


@test
def systemd_unit_runs_the_agent_without_blocking_bpf():
    settings = unit_settings()
    expect_equal(exec_start(UNIT), AGENT_COMMAND, "ExecStart")
    present = [key for key in UNIT_FORBIDDEN if ("Service", key) in settings]
    expect(not present, "hardening that blocks bpf(), pins or setns(): %s" % ", ".join(present))
    expect_equal(settings.get(("Service", "NoNewPrivileges")), ["yes"], "NoNewPrivileges")


@test
def containerfile_builds_on_debian_12_and_ships_the_agent():
    stages = containerfile_stages()
    expect_equal([image for image, _, _ in stages], ["debian:12", "debian:12-slim"], "FROM images")
    build_name, final = stages[0][1], stages[1][2]
    copies = [rest.split() for word, rest in final if word == "COPY"]
    from_build = [c for c in copies if c[0] in ("--from=%s" % build_name, "--from=0")]
    expect(any(c[-1] == AGENT_PATH for c in from_build),
           "the final stage does not COPY --from=%s ... %s" % (build_name, AGENT_PATH))
    expect(any(c[-1] == CONFIG_PATH for c in copies), "the final stage does not COPY " + CONFIG_PATH)
    instructions = dict(final)
    expect_equal(instructions.get("ENTRYPOINT"), '["%s"]' % AGENT_PATH, "ENTRYPOINT")
    expect_equal(instructions.get("CMD"), '["--config", "%s"]' % CONFIG_PATH, "CMD")
    build = " ".join(rest for word, rest in stages[0][2] if word == "RUN")
    expect("make deps" in build and "make all" in build,
           "the build stage does not install the build dependencies and make the agent")
    # every shared library the agent links comes from a package the run stage installs
    run = " ".join(rest for word, rest in final if word == "RUN")
    agent = output_dir() + "/kaccess"
    if os.access(agent, os.X_OK):
        for soname in linked_libraries(agent):
            package = owning_package(soname)
            expect(package is None or package in run.split(),
                   "the run stage does not install %s (for %s)" % (package, soname))
        # and no library package the agent does not load (one it stopped linking)
        loaded = {owning_package(path) for path in loaded_libraries(agent)}
        for package in (word for word in run.split() if re.match(r"^(lib\S+|zlib1g)$", word)):
            expect(package in loaded,
                   "the run stage installs %s, which the agent does not load" % package)


@test
def make_install_dry_run_names_the_four_installed_paths():
    destdir = tempfile.mkdtemp(prefix="kaccess-selftest-install-")
    try:
        os.rmdir(destdir)  # a dry run must not need, nor create, it
        printed = run_make(["-n", "install"], destdir)
        for what, path in DEFAULT_INSTALLED.items():
            expect(destdir + path in printed, "make -n install does not name the %s %s:\n%s"
                   % (what, destdir + path, printed.strip()))
        expect(not os.path.exists(destdir), "make -n install created " + destdir)
    finally:
        shutil.rmtree(destdir, ignore_errors=True)


@test
def make_install_installs_the_four_files_with_their_modes():
    agent = built_agent()
    destdir = tempfile.mkdtemp(prefix="kaccess-selftest-install-")
    try:
        run_make(["install"], destdir)
        modes = {"binary": 0o755, "config": 0o644, "unit": 0o644, "readme": 0o644}
        for what, path in DEFAULT_INSTALLED.items():
            expect(os.path.isfile(destdir + path), "no %s at %s" % (what, destdir + path))
            expect_equal(oct(mode(destdir + path)), oct(modes[what]), "mode of " + path)
        with open(agent, "rb") as built, open(destdir + DEFAULT_INSTALLED["binary"], "rb") as installed:
            expect(built.read() == installed.read(), "the installed binary is not " + agent)
        expect_equal(read_text(destdir + DEFAULT_INSTALLED["config"]), read_text(SHIPPED_CONFIG),
                     "installed config")
        unit = destdir + DEFAULT_INSTALLED["unit"]
        expect_equal(exec_start(unit), [DEFAULT_INSTALLED["binary"], "--config",
                                        DEFAULT_INSTALLED["config"]], "installed ExecStart")
        expect(destdir not in read_text(unit), "the installed unit names DESTDIR")
    finally:
        shutil.rmtree(destdir, ignore_errors=True)


@test
def make_install_rewrites_the_unit_to_prefix_and_sysconfdir():
    built_agent()
    destdir = tempfile.mkdtemp(prefix="kaccess-selftest-install-")
    try:
        run_make(["install", "prefix=/opt/kaccess", "sysconfdir=/opt/kaccess/etc"], destdir)
        unit = destdir + "/opt/kaccess/lib/systemd/system/kaccess.service"
        expect(os.path.isfile(unit), "no unit at " + unit)
        expect(os.path.isfile(destdir + "/opt/kaccess/etc/kaccess/kaccess.conf"), "no config")
        expect_equal(exec_start(unit), ["/opt/kaccess/sbin/kaccess", "--config",
                                        "/opt/kaccess/etc/kaccess/kaccess.conf"], "ExecStart")
        settings = [line for line in read_text(unit).splitlines() if not line.startswith("#")]
        stale = [line for line in settings if "/usr/local" in line]
        expect(not stale, "the unit still names /usr/local: %s" % stale)
    finally:
        shutil.rmtree(destdir, ignore_errors=True)


@test
def make_install_keeps_an_existing_config_and_uninstall_leaves_it():
    built_agent()
    destdir = tempfile.mkdtemp(prefix="kaccess-selftest-install-")
    config = destdir + DEFAULT_INSTALLED["config"]
    try:
        run_make(["install"], destdir)
        with open(config, "a", encoding="utf-8") as file:
            file.write("log_level = debug\n")
        edited = read_text(config)
        printed = run_make(["install"], destdir)
        expect(read_text(config) == edited, "a second install overwrote the edited " + config)
        expect_equal(read_text(config + ".dist"), read_text(SHIPPED_CONFIG), "kaccess.conf.dist")
        expect(config in printed and "NOTE" in printed, "install did not say it kept " + config)
        run_make(["uninstall"], destdir)
        for what in ("binary", "unit", "readme"):
            expect(not os.path.exists(destdir + DEFAULT_INSTALLED[what]),
                   "uninstall left the %s %s" % (what, DEFAULT_INSTALLED[what]))
        expect(read_text(config) == edited, "uninstall changed or removed " + config)
    finally:
        shutil.rmtree(destdir, ignore_errors=True)


def main():
    print("TAP version 13")
    if not os.path.isfile(MANIFEST):
        print("Bail out! run from the repository root: %s not found" % MANIFEST)
        return 1
    print("1..%d" % len(TESTS))
    failed = skipped = 0
    for number, function in enumerate(TESTS, 1):
        name = "manifests." + function.__name__
        try:
            function()
        except Skip as reason:
            print("ok %d %s # SKIP %s" % (number, name, reason))
            skipped += 1
        except Failure as failure:
            for line in str(failure).splitlines():
                print("# " + line)
            print("not ok %d %s" % (number, name))
            failed += 1
        except Exception as error:  # a manifest shaped so that a lookup breaks
            print("# %s: %s" % (type(error).__name__, error))
            print("not ok %d %s" % (number, name))
            failed += 1
        else:
            print("ok %d %s" % (number, name))
        sys.stdout.flush()
    print("# Totals: pass:%d fail:%d skip:%d" % (len(TESTS) - failed - skipped, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
