#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# mkkernel.sh OUTPUT_DIR SERIES: one guest kernel, e.g. SERIES 6.1 or 6.12.
#
# Takes the newest Debian cloud kernel package of the series that apt knows
# (linux-image-6.1.0-N-cloud-amd64-unsigned, linux-image-6.12.N+debN-cloud-
# amd64-unsigned), downloads it once into OUTPUT_DIR/vm/debs/ and writes
# OUTPUT_DIR/vm/kernels/SERIES/:
#   vmlinuz, config, release (its `uname -r`), package (the .deb's name)
#   modules.cpio    the modules of VMTEST_MODULES (default below) and their
#                   dependencies, decompressed, with load-order listing them
#                   in insmod order (modprobe --show-depends on a depmod of
#                   the unpacked package)
#   initramfs.cpio  OUTPUT_DIR/vm/root.cpio (mkroot.sh) + modules.cpio
set -euo pipefail

output_dir=${1:?usage: mkkernel.sh OUTPUT_DIR SERIES}
series=${2:?usage: mkkernel.sh OUTPUT_DIR SERIES}
# veth: the pods; nf_tables: the tests' nft rules (counter is built in);
# the rest for tests that drop packets or shape queues (numgen, reject,
# htb, tbf), translate addresses as kube-proxy does (nat chains, dnat) or
# attach TC programs (ingress, cls_bpf).
modules=${VMTEST_MODULES:-veth nf_tables nft_numgen nft_reject_inet nft_chain_nat nft_nat sch_htb sch_tbf sch_ingress cls_bpf}
vm=$output_dir/vm
debs=$vm/debs
kdir=$vm/kernels/$series

die() { echo "mkkernel.sh: $series: $*" >&2; exit 1; }

[[ $series =~ ^[0-9]+\.[0-9]+$ ]] || die "not a kernel series (like 6.1 or 6.12)"
[ -r "$vm/root.cpio" ] || die "$vm/root.cpio missing: run mkroot.sh first ('make vm-tools')"
mkdir -p "$debs"

# 6.1: linux-image-6.1.0-56-cloud-amd64-unsigned (the ABI number counts up);
# 6.12: linux-image-6.12.117+deb12-cloud-amd64-unsigned.
name_regex="^linux-image-${series//./\\.}(\\.0-[0-9]+|\\.[0-9]+\\+deb[0-9]+)-cloud-amd64-unsigned\$"

newest_known() {
	apt-cache search --names-only "$name_regex" 2>/dev/null | awk '{ print $1 }' | sort -V | tail -n 1
}

# newest_cached [PACKAGE]: the newest .deb in the cache of PACKAGE, or of
# any package of the series.
newest_cached() {
	local deb name
	for deb in "$debs"/linux-image-*.deb; do
		[ -e "$deb" ] || continue
		name=$(basename "$deb")
		name=${name%%_*}
		if [ "$name" = "${1:-}" ] || { [ -z "${1:-}" ] && [[ $name =~ $name_regex ]]; }; then
			echo "$deb"
		fi
	done | sort -V | tail -n 1
}

apt_update() {
	[ "$(id -u)" = 0 ] || return 1
	echo "  APT      update (looking for the $series kernel)"
	apt-get update -q >/dev/null
}

# apt-get download as root warns that _apt cannot write the directory.
download() {
	(cd "$debs" && apt-get download -q "$1" 2>&1 | grep -v 'unsandboxed' >&2; exit "${PIPESTATUS[0]}")
}

package=$(newest_known)
if [ -z "$package" ] && apt_update; then
	package=$(newest_known)
fi
deb=""
if [ -n "$package" ]; then
	deb=$(newest_cached "$package")
	if [ -z "$deb" ]; then
		echo "  FETCH    $package"
		if download "$package" || { apt_update && download "$package"; }; then
			deb=$(newest_cached "$package")
		fi
	fi
fi
if [ -z "$deb" ]; then
	deb=$(newest_cached)
	[ -n "$deb" ] || die "no linux-image package for $series in apt's lists nor in $debs"
	echo "mkkernel.sh: $series: using the cached $(basename "$deb")" >&2
fi

mkdir -p "$kdir"
stamp="$(basename "$deb") modules=$modules"
if [ "$(cat "$kdir/stamp" 2>/dev/null)" != "$stamp" ] || [ ! -r "$kdir/modules.cpio" ]; then
	echo "  KERNEL   $(basename "$deb")"
	unpacked=$(mktemp -d "$vm/unpack.XXXXXX")
	trap 'rm -rf "$unpacked"' EXIT
	dpkg-deb -x "$deb" "$unpacked/pkg"
	release=$(ls "$unpacked/pkg/lib/modules")
	[ -r "$unpacked/pkg/boot/vmlinuz-$release" ] || die "$deb: no vmlinuz"
	cp "$unpacked/pkg/boot/vmlinuz-$release" "$kdir/vmlinuz"
	cp "$unpacked/pkg/boot/config-$release" "$kdir/config"

	# The package has no modules.dep (its postinst runs depmod).
	depmod -b "$unpacked/pkg" "$release"
	module_dir=$unpacked/mods/usr/lib/modules/$release
	mkdir -p "$module_dir"
	: > "$module_dir/load-order"
	for module in $modules; do
		modprobe -d "$unpacked/pkg" -S "$release" --show-depends "$module" ||
			die "module $module not found"
	done | while read -r verb path _; do
		[ "$verb" = insmod ] || continue # "builtin NAME": nothing to load
		name=$(basename "$path")
		name=${name%.xz}
		name=${name%.zst}
		grep -qFx "$name" "$module_dir/load-order" && continue
		case $path in
		*.ko.xz) xz -dc "$path" > "$module_dir/$name" ;;
		*.ko.zst) zstd -qdc "$path" > "$module_dir/$name" ;;
		*) cp "$path" "$module_dir/$name" ;;
		esac
		echo "$name" >> "$module_dir/load-order"
	done
	(cd "$unpacked/mods" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc --owner=0:0 --quiet) > "$kdir/modules.cpio"
	echo "$release" > "$kdir/release"
	basename "$deb" > "$kdir/package"
	echo "$stamp" > "$kdir/stamp"
fi

# The kernel unpacks concatenated cpio archives in order.
cat "$vm/root.cpio" "$kdir/modules.cpio" > "$kdir/initramfs.cpio.tmp"
mv "$kdir/initramfs.cpio.tmp" "$kdir/initramfs.cpio"
