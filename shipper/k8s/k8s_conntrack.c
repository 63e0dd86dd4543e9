// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The real backend of a connection kube-proxy DNATed: ask conntrack (netlink,
 * IPCTNL_MSG_CT_GET) for the entry whose original tuple is the connection as
 * the client saw it (local -> ClusterIP:port); its reply tuple's source is
 * the backend pod. Plain netlink, no library: Debian ships neither
 * libnetfilter_conntrack nor libmnl as static archives, and the VM runner
 * links statically.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>

#include "k8s.h"

#define CONNTRACK_TIMEOUT_MS 1000

struct message {
	char data[512];
	size_t len;
};

static bool is_v4_mapped(const uint8_t addr[16])
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(addr, prefix, 12) == 0;
}

static struct nlattr *attr_put(struct message *msg, uint16_t type, const void *data, size_t len)
{
	struct nlattr *attr = (struct nlattr *)(msg->data + msg->len);

	attr->nla_type = type;
	attr->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy((char *)attr + NLA_HDRLEN, data, len);
	msg->len += NLA_ALIGN(attr->nla_len);
	return attr;
}

static void nest_end(struct message *msg, struct nlattr *nest)
{
	nest->nla_len = (uint16_t)(msg->data + msg->len - (char *)nest);
}

static void put_tuple(struct message *msg, const struct k8s_tuple *tuple, bool v4)
{
	struct nlattr *orig = attr_put(msg, CTA_TUPLE_ORIG | NLA_F_NESTED, NULL, 0);
	struct nlattr *ip = attr_put(msg, CTA_TUPLE_IP | NLA_F_NESTED, NULL, 0), *proto;
	uint8_t protocol = IPPROTO_TCP;
	uint16_t src_port = htons(tuple->local_port), dst_port = htons(tuple->peer_port);

	if (v4) {
		attr_put(msg, CTA_IP_V4_SRC, tuple->local_addr + 12, 4);
		attr_put(msg, CTA_IP_V4_DST, tuple->peer_addr + 12, 4);
	} else {
		attr_put(msg, CTA_IP_V6_SRC, tuple->local_addr, 16);
		attr_put(msg, CTA_IP_V6_DST, tuple->peer_addr, 16);
	}
	nest_end(msg, ip);
	proto = attr_put(msg, CTA_TUPLE_PROTO | NLA_F_NESTED, NULL, 0);
	attr_put(msg, CTA_PROTO_NUM, &protocol, 1);
	attr_put(msg, CTA_PROTO_SRC_PORT, &src_port, 2);
	attr_put(msg, CTA_PROTO_DST_PORT, &dst_port, 2);
	nest_end(msg, proto);
	nest_end(msg, orig);
}

static void build_request(struct message *msg, const struct k8s_tuple *tuple, bool v4)
{
	struct nlmsghdr *header = (struct nlmsghdr *)msg->data;
	struct nfgenmsg *family;

	memset(msg, 0, sizeof(*msg));
	header->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	header->nlmsg_flags = NLM_F_REQUEST;
	header->nlmsg_seq = 1;
	msg->len = NLMSG_HDRLEN;
	family = (struct nfgenmsg *)(msg->data + msg->len);
	family->nfgen_family = v4 ? AF_INET : AF_INET6;
	family->version = NFNETLINK_V0;
	msg->len += NLMSG_ALIGN(sizeof(*family));
	put_tuple(msg, tuple, v4);
	header->nlmsg_len = (uint32_t)msg->len;
}

/* The nested attribute `type` inside [data, data+len), or NULL. */
static const struct nlattr *attr_find(const char *data, size_t len, uint16_t type)
{
	while (len >= NLA_HDRLEN) {
		const struct nlattr *attr = (const struct nlattr *)data;
		size_t step = NLA_ALIGN(attr->nla_len);

		if (attr->nla_len < NLA_HDRLEN || attr->nla_len > len)
			return NULL;
		if ((attr->nla_type & NLA_TYPE_MASK) == type)
			return attr;
		if (step >= len)
			break;
		data += step;
		len -= step;
	}
	return NULL;
}

static const struct nlattr *attr_child(const struct nlattr *parent, uint16_t type)
{
	if (!parent)
		return NULL;
	return attr_find((const char *)parent + NLA_HDRLEN, parent->nla_len - NLA_HDRLEN, type);
}

static int parse_reply_tuple(const char *attrs, size_t len, bool v4, uint8_t ret_addr[16],
			     uint16_t *ret_port)
{
	const struct nlattr *reply = attr_find(attrs, len, CTA_TUPLE_REPLY);
	const struct nlattr *src = attr_child(attr_child(reply, CTA_TUPLE_IP),
					      v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC);
	const struct nlattr *port = attr_child(attr_child(reply, CTA_TUPLE_PROTO),
					       CTA_PROTO_SRC_PORT);
	uint16_t port_be;

	if (!src || !port || src->nla_len != NLA_HDRLEN + (v4 ? 4 : 16))
		return -EPROTO;
	if (v4) {
		memset(ret_addr, 0, 10);
		ret_addr[10] = ret_addr[11] = 0xff;
		memcpy(ret_addr + 12, (const char *)src + NLA_HDRLEN, 4);
	} else {
		memcpy(ret_addr, (const char *)src + NLA_HDRLEN, 16);
	}
	memcpy(&port_be, (const char *)port + NLA_HDRLEN, 2);
	*ret_port = ntohs(port_be);
	return 0;
}

static int parse_response(const char *data, size_t len, bool v4, uint8_t ret_addr[16],
			  uint16_t *ret_port)
{
	const struct nlmsghdr *header = (const struct nlmsghdr *)data;
	size_t attrs_offset = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));

	if (!NLMSG_OK(header, len))
		return -EPROTO;
	if (header->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *error = NLMSG_DATA(header);

		return error->error ? error->error : -ENOENT;
	}
	if (header->nlmsg_len < attrs_offset)
		return -EPROTO;
	return parse_reply_tuple(data + attrs_offset, header->nlmsg_len - attrs_offset, v4,
				 ret_addr, ret_port);
}

int k8s_conntrack_backend(const struct k8s_tuple *tuple, uint8_t ret_addr[16],
			  uint16_t *ret_port)
{
	bool v4 = is_v4_mapped(tuple->local_addr) && is_v4_mapped(tuple->peer_addr);
	struct timeval timeout = { .tv_usec = CONNTRACK_TIMEOUT_MS * 1000 };
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct message request;
	char response[8192];
	ssize_t got;
	int fd, err;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	build_request(&request, tuple, v4);
	if (sendto(fd, request.data, request.len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		err = -errno;
		goto out;
	}
	got = recv(fd, response, sizeof(response), 0);
	if (got < 0) {
		err = -errno;
		goto out;
	}
	err = parse_response(response, (size_t)got, v4, ret_addr, ret_port);
out:
	close(fd);
	return err;
}
