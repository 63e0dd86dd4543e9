// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "l24_fields.h"

#define FIELD(name, measure, rollup) \
	{ #name, offsetof(struct kaccess_agg_value, name), KACCESS_L24_##measure, ROLLUP_F_##rollup }

const struct l24_field l24_fields[] = {
	FIELD(write_l4_duration_ns_sum, WRITE_L4, WRITE_L4_DURATION),
	FIELD(write_packets, WRITE_PACKETS, WRITE_L4_TRANSMIT_PACKETS),
	FIELD(write_packet_bytes, WRITE_PACKETS, WRITE_L4_PACKET_BYTES),
	FIELD(write_retransmit_packets, RETRANSMITS, WRITE_L4_RETRANSMIT_PACKETS),
	FIELD(write_resolve_mac_count, RESOLVE_MAC, WRITE_L3_RESOLVE_MAC_COUNT),
	FIELD(write_resolve_mac_duration_ns_sum, RESOLVE_MAC, WRITE_L3_RESOLVE_MAC_DURATION),
	FIELD(write_l2_duration_ns_sum, WRITE_L2, WRITE_L2_DURATION),
	FIELD(write_l2_ready_send_duration_ns_sum, WRITE_L2, WRITE_L2_READY_SEND_DURATION),
	FIELD(write_l2_device_send_duration_ns_sum, WRITE_L2, WRITE_L2_DEVICE_SEND_DURATION),
	FIELD(write_l2_enter_queue_count, ENTER_QUEUE, WRITE_L2_ENTER_QUEUE_COUNT),
	FIELD(read_packets, READ_PACKETS, READ_L2_PACKETS),
	FIELD(read_packet_bytes, READ_PACKETS, READ_L2_PACKET_BYTES),
	FIELD(read_l4_duration_ns_sum, READ_L4, READ_L4_DURATION),
	FIELD(read_l3_duration_ns_sum, READ_WINDOWS, READ_L3_DURATION),
	FIELD(read_l2_to_queue_duration_ns_sum, READ_WINDOWS, READ_L2_TO_QUEUE_DURATION),
	FIELD(read_l2_from_queue_duration_ns_sum, READ_WINDOWS, READ_L2_FROM_QUEUE_DURATION),
	FIELD(write_l3_duration_ns_sum, NETFILTER, WRITE_L3_DURATION),
	FIELD(write_l3_local_duration_ns_sum, NETFILTER, WRITE_L3_LOCAL_DURATION),
	FIELD(write_l3_output_duration_ns_sum, NETFILTER, WRITE_L3_OUTPUT_DURATION),
	FIELD(write_netfilter_count, NETFILTER, WRITE_L3_NETFILTER_COUNT),
	FIELD(write_netfilter_duration_ns_sum, NETFILTER, WRITE_L3_NETFILTER_DURATION),
	FIELD(read_l3_rcv_duration_ns_sum, NETFILTER, READ_L3_RCV_DURATION),
	FIELD(read_l3_local_duration_ns_sum, NETFILTER, READ_L3_LOCAL_DURATION),
	FIELD(read_netfilter_count, NETFILTER, READ_L3_NETFILTER_COUNT),
	FIELD(read_netfilter_duration_ns_sum, NETFILTER, READ_L3_NETFILTER_DURATION),
	FIELD(write_egress_packets, EGRESS, NONE), /* not L3: OAP gets no write L3 without links */
	FIELD(write_egress_duration_ns_sum, EGRESS, NONE),
	FIELD(write_loss_packets, LOSS, NONE), /* OAP has no metric of it; the access logs carry it */
};

const size_t l24_field_count = sizeof(l24_fields) / sizeof(l24_fields[0]);

/* Every L2-L4 sum of struct kaccess_agg_value is in the table (the loss slots follow them). */
_Static_assert(sizeof(l24_fields) / sizeof(l24_fields[0]) ==
		       (offsetof(struct kaccess_agg_value, write_loss_reason) -
			offsetof(struct kaccess_agg_value, write_l4_duration_ns_sum)) / sizeof(__u64),
	       "l24_fields lists every L2-L4 field");
