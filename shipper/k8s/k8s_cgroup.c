// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Kubelet cgroup paths -> pod UID and container id. The kubelet names a pod's
 * cgroup after its UID ("pod<uid>" with the cgroupfs driver,
 * "kubepods[-<qos>]-pod<uid_>.slice" with systemd) and the runtime names the
 * container's cgroup after the container id, so neither needs the API.
 * Components are searched anywhere in the path: nested hierarchies, cgroup
 * namespaces ("/../../kubepods/...") and cgroup v1 mounts all keep this tail.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "k8s.h"

#define CONTAINER_ID_CHARS 64

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/*
 * A pod UID: 36 characters 8-4-4-4-12 with `separator`, or 32 hex (the
 * config hash a static pod's cgroup is named after).
 */
static int copy_pod_uid(const char *text, size_t len, char separator, char *ret_uid)
{
	if (len == 32) {
		for (size_t i = 0; i < len; i++)
			if (!is_hex(text[i]))
				return -EINVAL;
	} else if (len == 36) {
		for (size_t i = 0; i < len; i++) {
			bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;

			if (dash_position ? text[i] != separator : !is_hex(text[i]))
				return -EINVAL;
		}
	} else {
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++)
		ret_uid[i] = text[i] == separator ? '-' : text[i];
	ret_uid[len] = '\0';
	return 0;
}

/* "pod<uid>" (cgroupfs) or "kubepods[-qos]-pod<uid_>.slice" (systemd). */
static int parse_pod_component(const char *name, size_t len, char *ret_uid)
{
	const char *suffix = ".slice";
	size_t suffix_len = strlen(suffix);
	const char *marker;

	if (len > 3 && strncmp(name, "pod", 3) == 0)
		return copy_pod_uid(name + 3, len - 3, '-', ret_uid);
	if (len <= suffix_len || strncmp(name + len - suffix_len, suffix, suffix_len) != 0 ||
	    strncmp(name, "kubepods", 8) != 0)
		return -EINVAL;
	marker = memmem(name, len, "-pod", 4);
	if (!marker)
		return -EINVAL;
	marker += 4;
	return copy_pod_uid(marker, name + len - suffix_len - marker, '_', ret_uid);
}

struct runtime_prefix {
	const char *prefix;
	enum k8s_runtime runtime;
};

/* conmon's own scope ("crio-conmon-<cid>.scope") is no container: not listed. */
static const struct runtime_prefix runtime_prefixes[] = {
	{ "cri-containerd-", K8S_RUNTIME_CONTAINERD },
	{ "crio-", K8S_RUNTIME_CRIO },
	{ "docker-", K8S_RUNTIME_DOCKER },
};

/* "<cid>", "<runtime>-<cid>" or "<runtime>-<cid>.scope". */
static int parse_container_component(const char *name, size_t len, char *ret_id,
				     enum k8s_runtime *ret_runtime)
{
	enum k8s_runtime runtime = K8S_RUNTIME_PLAIN;

	if (len > 6 && strncmp(name + len - 6, ".scope", 6) == 0)
		len -= 6;
	for (size_t i = 0; i < sizeof(runtime_prefixes) / sizeof(runtime_prefixes[0]); i++) {
		size_t prefix_len = strlen(runtime_prefixes[i].prefix);

		if (len > prefix_len && strncmp(name, runtime_prefixes[i].prefix, prefix_len) == 0) {
			name += prefix_len;
			len -= prefix_len;
			runtime = runtime_prefixes[i].runtime;
			break;
		}
	}
	if (len != CONTAINER_ID_CHARS)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (!is_hex(name[i]))
			return -EINVAL;
	memcpy(ret_id, name, len);
	ret_id[len] = '\0';
	*ret_runtime = runtime;
	return 0;
}

int k8s_parse_cgroup_path(const char *path, struct k8s_cgroup_ids *ret_ids)
{
	struct k8s_cgroup_ids ids = { .runtime = K8S_RUNTIME_NONE };
	bool have_pod = false;
	const char *component = path;

	/* The last pod component wins; the container is the component right after it. */
	while (*component) {
		size_t len = strcspn(component, "/\n");

		if (len) {
			char uid[K8S_POD_UID_LEN];

			if (parse_pod_component(component, len, uid) == 0) {
				have_pod = true;
				snprintf(ids.pod_uid, sizeof(ids.pod_uid), "%s", uid);
				ids.container_id[0] = '\0';
				ids.runtime = K8S_RUNTIME_NONE;
			} else if (have_pod && ids.runtime == K8S_RUNTIME_NONE) {
				if (parse_container_component(component, len, ids.container_id,
							      &ids.runtime))
					ids.container_id[0] = '\0';
			}
		}
		component += len;
		if (*component == '\n')
			break;
		if (*component)
			component++;
	}
	if (!have_pod)
		return -ENOENT;
	*ret_ids = ids;
	return 0;
}

/* One "hierarchy-id:controllers:path" line; its path, or NULL. */
static const char *proc_cgroup_line_path(const char *line, bool *ret_is_v2)
{
	const char *first = strchr(line, ':'), *second;
	const char *end = strchr(line, '\n');

	if (!first || (end && first > end))
		return NULL;
	second = strchr(first + 1, ':');
	if (!second || (end && second > end))
		return NULL;
	*ret_is_v2 = first - line == 1 && line[0] == '0' && second == first + 1;
	return second + 1;
}

int k8s_parse_proc_cgroup(const char *text, struct k8s_cgroup_ids *ret_ids)
{
	struct k8s_cgroup_ids v1_ids;
	bool have_v1 = false;

	/* cgroup v2 is what BPF sees; a v1 controller's path is the fallback. */
	for (const char *line = text; line && *line;) {
		const char *next = strchr(line, '\n');
		bool is_v2 = false;
		const char *path = proc_cgroup_line_path(line, &is_v2);
		struct k8s_cgroup_ids ids;

		if (path && k8s_parse_cgroup_path(path, &ids) == 0) {
			if (is_v2) {
				*ret_ids = ids;
				return 0;
			}
			if (!have_v1) {
				v1_ids = ids;
				have_v1 = true;
			}
		}
		line = next ? next + 1 : NULL;
	}
	if (!have_v1)
		return -ENOENT;
	*ret_ids = v1_ids;
	return 0;
}
