# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# cpu_share.awk: the shipper's CPU share at a reference request rate, shared
# by shipper.awk (throughput section) and oap.awk (oap section); load it with
# an extra -f before them.
#
# The BPF programs' time is not the shipper's: they run in the context of
# the tasks that make the syscalls. What the process itself does (ring-buffer
# polls every 200 ms, connection events, drains, sending to OAP) grows with
# connections and buckets, never falls as the request rate rises: the share
# measured at a higher rate bounds the share at the reference rate from
# above. Below the reference rate the measured share is scaled up linearly.

# Percent of a core at rate_ref req/s, from pct measured at rate req/s.
function cpu_share_at_ref(pct, rate, rate_ref) {
	if (rate >= rate_ref)
		return pct
	return rate > 0 ? pct * rate_ref / rate : 0
}

# The share if it scaled with the request rate (a lower bound above rate_ref).
function cpu_share_linear(pct, rate, rate_ref) {
	return rate > 0 ? pct * rate_ref / rate : 0
}
