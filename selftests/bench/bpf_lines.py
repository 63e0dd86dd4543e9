#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""
bpf_lines.py PERF_DATA [TOP]: where the BPF programs spend their time, by
source line, from a whole-machine `perf record -a` profile.

perf names a sample in a BPF program by symbol and offset only, and
Debian's perf and bpftool cannot annotate BPF (no libbfd). The kernel
keeps each program's line table, though: for every source line, the
translated instruction it starts at and the address its JIT code starts
at. This maps each sample's address through that table to the line.

Run it while the profiled agent is still loaded (the addresses are the
loaded programs'), as root:

    perf record -a -o /tmp/perf.data -- sleep 10   # under load
    /usr/bin/python3 selftests/bench/bpf_lines.py /tmp/perf.data

A sample names the instruction that was about to retire when the timer
fired, so a line right after a load that missed the cache collects the
wait for it.
"""
import collections
import ctypes
import json
import re
import struct
import subprocess
import sys

BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
SYS_BPF = 321  # x86_64
INFO_SIZE = 256  # struct bpf_prog_info as far as its jited line info, rounded up

# Offsets in struct bpf_prog_info (include/uapi/linux/bpf.h).
INFO_NR_JITED_KSYMS = 104     # __u32 nr_jited_ksyms, __u32 nr_jited_func_lens
INFO_JITED_KSYMS = 112        # __u64 jited_ksyms, __u64 jited_func_lens
INFO_NR_LINE_INFO = 148       # __u32 nr_line_info
INFO_LINE_INFO = 152          # __u64 line_info, __u64 jited_line_info
INFO_NR_JITED_LINE_INFO = 168  # __u32 nr_jited_line_info, line_info_rec_size, jited_line_info_rec_size

libc = ctypes.CDLL(None, use_errno=True)


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(bytes(attr), 128)
    ret = libc.syscall(SYS_BPF, cmd, buf, 128)
    if ret < 0:
        raise OSError(ctypes.get_errno(), f"bpf({cmd})")
    return ret


def prog_info(fd, request):
    """struct bpf_prog_info of `fd`, with the arrays `request` points at filled."""
    info = ctypes.create_string_buffer(bytes(request), INFO_SIZE)
    bpf(BPF_OBJ_GET_INFO_BY_FD, struct.pack("<IIQ", fd, INFO_SIZE, ctypes.addressof(info)))
    return info.raw


def line_table(prog_id):
    """[(start, length)] of the program's functions, and [(jit address, instruction)]."""
    fd = bpf(BPF_PROG_GET_FD_BY_ID, struct.pack("<I", prog_id))
    sizes = prog_info(fd, bytes(INFO_SIZE))
    n_ksyms, n_lens = struct.unpack_from("<II", sizes, INFO_NR_JITED_KSYMS)
    n_lines, = struct.unpack_from("<I", sizes, INFO_NR_LINE_INFO)
    n_jited_lines, line_rec_size = struct.unpack_from("<II", sizes, INFO_NR_JITED_LINE_INFO)
    ksyms = ctypes.create_string_buffer(8 * n_ksyms)
    lens = ctypes.create_string_buffer(4 * n_lens)
    lines = ctypes.create_string_buffer(line_rec_size * n_lines)
    jited_lines = ctypes.create_string_buffer(8 * n_jited_lines)
    request = bytearray(INFO_SIZE)
    struct.pack_into("<IIQQ", request, INFO_NR_JITED_KSYMS, n_ksyms, n_lens,
                     ctypes.addressof(ksyms), ctypes.addressof(lens))
    struct.pack_into("<I", request, INFO_NR_LINE_INFO, n_lines)
    struct.pack_into("<QQ", request, INFO_LINE_INFO, ctypes.addressof(lines), ctypes.addressof(jited_lines))
    struct.pack_into("<III", request, INFO_NR_JITED_LINE_INFO, n_jited_lines, line_rec_size, 8)
    prog_info(fd, request)
    libc.close(fd)
    funcs = list(zip(struct.unpack(f"<{n_ksyms}Q", ksyms.raw), struct.unpack(f"<{n_lens}I", lens.raw)))
    addresses = struct.unpack(f"<{n_jited_lines}Q", jited_lines.raw)
    starts = sorted((addresses[i], struct.unpack_from("<I", lines.raw, i * line_rec_size)[0])
                    for i in range(min(n_lines, n_jited_lines)))
    return funcs, starts


def source_lines(prog_id):
    """Translated instruction -> "file:line code", from bpftool's listing."""
    listing = subprocess.run(["bpftool", "prog", "dump", "xlated", "id", str(prog_id), "linum"],
                             capture_output=True, text=True, check=True).stdout
    text, by_insn = None, {}
    for line in listing.splitlines():
        m = re.match(r"; (.*) \[file:(\S+) line_num:(\d+)", line)
        if m:
            text = f"{m.group(2).rsplit('/', 1)[-1]}:{m.group(3)} {m.group(1).strip()[:72]}"
            continue
        m = re.match(r"\s*(\d+): ", line)
        if m:
            by_insn[int(m.group(1))] = text
    return by_insn


def samples_in_bpf(perf_data):
    """Sample addresses in BPF programs, counted: each sample's own address
    only (-G), so a profile recorded with call graphs (-g) is not counted
    once per frame."""
    script = subprocess.run(["perf", "script", "-i", perf_data, "-G", "-F", "ip,sym"],
                            capture_output=True, text=True, check=True).stdout
    counts = collections.Counter()
    for line in script.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].startswith("bpf_prog_"):
            counts[int(fields[0], 16)] += 1
    return counts


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip())
    top = int(sys.argv[2]) if len(sys.argv) == 3 else 12
    samples = samples_in_bpf(sys.argv[1])
    if not samples:
        sys.exit("no samples in BPF programs: was the agent loaded and under load while perf recorded?")
    progs = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True,
                                      text=True, check=True).stdout)
    mapped = 0
    for prog in progs:
        try:
            funcs, starts = line_table(prog["id"])
        except OSError:  # unloaded since bpftool listed it
            continue
        mine = {ip: n for ip, n in samples.items() if any(a <= ip < a + size for a, size in funcs)}
        if not mine:
            continue
        mapped += sum(mine.values())
        by_insn = source_lines(prog["id"])
        by_line = collections.Counter()
        for ip, n in mine.items():
            insn = max((s for s in starts if s[0] <= ip), default=(0, 0))[1]
            by_line[by_insn.get(insn)] += n
        total = sum(mine.values())
        print(f"{prog.get('name', prog['id'])} (id {prog['id']}): {total} samples")
        for text, n in by_line.most_common(top):
            print(f"  {n:6d} {100.0 * n / total:5.1f}%  {text}")
    unmapped = sum(samples.values()) - mapped
    if not mapped:
        sys.exit(f"none of the {unmapped} samples in BPF programs is in a loaded one: "
                 "run this before the profiled agent exits")
    if unmapped:
        print(f"({unmapped} samples in programs no longer loaded)")


if __name__ == "__main__":
    main()
