#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# mkroot.sh OUTPUT_DIR: the guest's root, common to every kernel, as
# OUTPUT_DIR/vm/root/ and the cpio archive OUTPUT_DIR/vm/root.cpio.
#
#   /init                     selftests/vm/init (busybox sh)
#   /usr/bin/busybox + links  /init's shell; mount, insmod, grep, awk, ...
#   bash ip ss tc nft nginx curl bpftool timeout, /bin/sh (dash)
#                             the host's binaries, at their host paths, with
#                             every library ldd lists and the dynamic loader
#   /kaccess/                 the repository as the tests see it:
#                             selftests/run.sh, config/kaccess.conf, README.md,
#                             .output/kaccess and .output/selftests/test_*
#                             of VM_TEST_NAMES (the host's builds; their
#                             libraries at their host paths)
#
# The layout is Debian's merged /usr (/bin -> usr/bin, /lib -> usr/lib, ...),
# so ldd's paths work as they are. Kernel modules are added per kernel by
# mkkernel.sh.
set -euo pipefail

output_dir=${1:?usage: mkroot.sh OUTPUT_DIR}
vm_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$vm_dir/../.." && pwd)
root=$output_dir/vm/root
archive=$output_dir/vm/root.cpio

# The real peers the selftests run (test_nginx and test_http2 exec these exact paths).
# bpftool and nft as the tests call them: from PATH.
peers=(bash ip ss tc timeout /usr/sbin/nginx /usr/bin/curl bpftool nft
	/usr/sbin/nghttpd /usr/bin/nghttp /usr/bin/h2load)
# system() and popen() run /bin/sh: the host's (dash on Debian), because
# busybox's sh runs its own applets before PATH, so `ip netns add` there
# would be busybox's ip, which has no netns.
host_sh=$(readlink -f /bin/sh)

die() { echo "mkroot.sh: $*" >&2; exit 1; }
PATH=$PATH:/usr/sbin:/sbin

[ -x "$output_dir/kaccess" ] || die "$output_dir/kaccess missing: run 'make vm-tools'"
[ -n "${VM_TEST_NAMES:-}" ] || die "VM_TEST_NAMES is empty: run 'make vm-tools'"
# busybox-static's: the guest has no libraries of its own for it.
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
	die "no static /bin/busybox: run 'make deps-vm' (busybox-static)"
fi

rm -rf "$root"
mkdir -p "$root"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64} \
	"$root"/{dev,proc,sys,tmp,run,etc,root} "$root"/var/{log/nginx,lib/nginx}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
ln -s ../run "$root/var/run"
ln -s ../run/lock "$root/var/lock"
# The kernel gives /init its console here; devtmpfs is mounted over it later.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

# One file at its own path in the guest, dereferencing symlinks.
copy_file() {
	local path=$1
	[ -e "$root$path" ] && return 0
	mkdir -p "$root$(dirname "$path")"
	cp -L "$path" "$root$path"
}

# Every library ldd lists for a binary, and the loader.
copy_libraries_of() {
	local lib
	# "libx.so => /path (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
	for lib in $(ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		copy_file "$lib"
	done
}

# A dynamic binary from PATH at its own path, with its libraries.
copy_with_libraries() {
	local binary
	binary=$(command -v "$1") || die "$1 not found: run 'make deps-test'"
	binary=$(readlink -f "$binary")
	copy_file "$binary"
	copy_libraries_of "$binary"
}

# One of ours into /kaccess/.output, with its libraries.
copy_ours() {
	local binary=$1 dest=$2
	[ -x "$binary" ] || die "$binary missing: run 'make vm-tools'"
	cp "$binary" "$root/kaccess/.output/$dest"
	copy_libraries_of "$binary"
}

for peer in "${peers[@]}" "$host_sh"; do
	copy_with_libraries "$peer"
done
[ "$host_sh" = /usr/bin/sh ] || ln -s "$host_sh" "$root/usr/bin/sh"
# Applets fill in what the peers do not provide (the peers win: busybox's ip
# cannot create namespaces or veth pairs, its timeout has no --kill-after).
cp /bin/busybox "$root/usr/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ -e "$root/usr/bin/$applet" ] || [ -e "$root/usr/sbin/$applet" ] || ln -s busybox "$root/usr/bin/$applet"
done

# nginx's workers run as nobody:nogroup (its compiled-in default).
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
printf 'passwd: files\ngroup: files\nhosts: files\n' > "$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$root/etc/hosts"

mkdir -p "$root/kaccess/selftests" "$root/kaccess/config" "$root/kaccess/.output/selftests"
cp "$repo_dir/selftests/run.sh" "$root/kaccess/selftests/run.sh"
cp "$repo_dir/config/kaccess.conf" "$root/kaccess/config/kaccess.conf"
# test_ops runs the README's bpftool commands as written.
cp "$repo_dir/README.md" "$root/kaccess/README.md"
copy_ours "$output_dir/kaccess" kaccess
for test in $VM_TEST_NAMES; do
	copy_ours "$output_dir/selftests/$test" "selftests/$test"
done
install -m 755 "$vm_dir/init" "$root/init"

(cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --owner=0:0 --quiet) > "$archive.tmp"
mv "$archive.tmp" "$archive"
