/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Driving selftests/k8s/fake_apiserver.py from a C selftest (run from the
 * repository root): start it on a port (optionally with the fixtures and
 * extra arguments such as TLS), post controls (add_pod, delete_pod,
 * add_service, close_watches, http_410, watch_error_410, garbage, hang, bulk,
 * replay), read its counters, build real-shaped pod and service JSON.
 * Header-only: #include "k8s/fake_api.h" from selftests/test_*.c.
 */
#ifndef KACCESS_SELFTEST_FAKE_API_H
#define KACCESS_SELFTEST_FAKE_API_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#define FAKE_API "selftests/k8s/fake_apiserver.py"
#define FIXTURES "selftests/k8s/fixtures"

static inline int fake_free_port(void)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
		port = ntohs(addr.sin_port);
	close(fd);
	return port;
}

static const char *fake_scheme = "http";

static inline size_t fake_discard(char *data, size_t size, size_t count, void *user)
{
	return size * count;
}

struct fake_body {
	char text[4096];
	size_t len;
};

static inline size_t fake_keep(char *data, size_t size, size_t count, void *user)
{
	struct fake_body *body = user;
	size_t bytes = size * count, room = sizeof(body->text) - 1 - body->len;

	memcpy(body->text + body->len, data, bytes < room ? bytes : room);
	body->len += bytes < room ? bytes : room;
	body->text[body->len] = '\0';
	return bytes;
}

/* POST /_control/<verb> (json != NULL) or GET <path>: the HTTP status, -1 when down. */
static inline long fake_request(int port, const char *verb, const char *json, struct fake_body *ret_body)
{
	CURL *curl = curl_easy_init();
	char url[256];
	long status = -1;

	if (!curl)
		return -1;
	snprintf(url, sizeof(url), "%s://127.0.0.1:%d/_control/%s", fake_scheme, port, verb);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	/* the test's own control requests need not check the fake's certificate */
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	if (json)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ret_body ? fake_keep : fake_discard);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, ret_body);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	return status;
}

static inline long fake_control(int port, const char *verb, const char *json)
{
	return fake_request(port, verb, json ? json : "{}", NULL);
}

/* A counter from GET /_control/stats, -1 when it is not there. */
static inline long fake_stat(int port, const char *name)
{
	struct fake_body body = { .len = 0 };
	char needle[64];
	const char *found;

	if (fake_request(port, "stats", NULL, &body) != 200)
		return -1;
	snprintf(needle, sizeof(needle), "\"%s\": ", name);
	found = strstr(body.text, needle);
	return found ? strtol(found + strlen(needle), NULL, 10) : -1;
}

/* Extra arguments of the next fake_start (TLS, tokens); NULL-terminated. */
static const char *fake_extra_args[12];

/* A string from GET /_control/stats into ret (empty when absent). */
static inline void fake_stat_text(int port, const char *name, char *ret, size_t len)
{
	struct fake_body body = { .len = 0 };
	char needle[64];
	const char *found, *end;

	ret[0] = '\0';
	if (fake_request(port, "stats", NULL, &body) != 200)
		return;
	snprintf(needle, sizeof(needle), "\"%s\": \"", name);
	found = strstr(body.text, needle);
	if (!found)
		return;
	found += strlen(needle);
	end = strchr(found, '"');
	if (end && (size_t)(end - found) < len) {
		memcpy(ret, found, end - found);
		ret[end - found] = '\0';
	}
}

static inline pid_t fake_start(int port, bool fixtures)
{
	const char *argv[32] = { "python3", FAKE_API, "--port", NULL, "--bookmark-s", "0.5" };
	char port_text[16];
	int argc = 6;
	pid_t pid;

	snprintf(port_text, sizeof(port_text), "%d", port);
	argv[3] = port_text;
	if (fixtures) {
		argv[argc++] = "--fixtures";
		argv[argc++] = FIXTURES;
	}
	for (int i = 0; fake_extra_args[i]; i++)
		argv[argc++] = fake_extra_args[i];
	pid = fork();
	if (pid == 0) {
		int null_fd = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null_fd, STDOUT_FILENO);
		execv("/usr/bin/python3", (char *const *)argv);
		_exit(127);
	}
	/* Up when its control endpoint answers. */
	for (int i = 0; pid > 0 && i < 100; i++) {
		if (fake_stat(port, "rv") > 0)
			return pid;
		usleep(50000);
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return -1;
}

static inline void fake_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static char fake_pod_buf[2048];

/*
 * A running pod on node-1 (hostIP 192.0.2.10) with one IP; `labels` is the
 * inside of a JSON object: "\"app\": \"web\"". The result is valid until the
 * next call.
 */
static inline const char *fake_pod_json(const char *ns, const char *name, const char *uid, const char *ip,
			    const char *labels)
{
	snprintf(fake_pod_buf, sizeof(fake_pod_buf),
		 "{\"metadata\": {\"name\": \"%s\", \"namespace\": \"%s\", \"uid\": \"%s\", "
		 "\"labels\": {%s}}, \"spec\": {\"nodeName\": \"node-1\"}, \"status\": "
		 "{\"phase\": \"Running\", \"podIP\": \"%s\", \"podIPs\": [{\"ip\": \"%s\"}], "
		 "\"hostIP\": \"192.0.2.10\"}}",
		 name, ns, uid, labels, ip, ip);
	return fake_pod_buf;
}

static char fake_service_buf[1024];

/* A ClusterIP service on port 80/TCP; `selector` as fake_pod_json's labels. */
static inline const char *fake_service_json(const char *ns, const char *name, const char *selector,
				const char *cluster_ip)
{
	snprintf(fake_service_buf, sizeof(fake_service_buf),
		 "{\"metadata\": {\"name\": \"%s\", \"namespace\": \"%s\"}, \"spec\": {\"selector\": "
		 "{%s}, \"type\": \"ClusterIP\", \"clusterIP\": \"%s\", \"clusterIPs\": [\"%s\"], "
		 "\"ports\": [{\"port\": 80, \"protocol\": \"TCP\"}]}}",
		 name, ns, selector, cluster_ip, cluster_ip);
	return fake_service_buf;
}

#endif
