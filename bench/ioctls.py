"""Sums the time a traced run spent in each ZFS ioctl: `strace -f -T -e trace=ioctl`
output in, a Markdown table out. Names come from the installed zfs.h's enum."""
import collections
import re
import sys

trace, header = sys.argv[1], sys.argv[2]
names = {}
for line in open(header):
    m = re.match(r"\s*ZFS_IOC_(\w+)\s*(?:=\s*ZFS_IOC_FIRST)?\s*,\s*/\*\s*(0x[0-9a-f]+)\s*\*/", line)
    if m:
        names[int(m.group(2), 16)] = m.group(1)
total = collections.defaultdict(lambda: [0, 0.0])
for line in open(trace):
    m = re.search(r"ioctl\(\d+, (?:_IOC\(_IOC_NONE, 0x5a, (0x[0-9a-f]+), 0\)|(0x5a[0-9a-f]{2}))", line)
    t = re.search(r"<([\d.]+)>\s*$", line)
    if not (m and t):
        continue
    code = 0x5A00 + int(m.group(1), 16) if m.group(1) else int(m.group(2), 16)
    name = names.get(code, hex(code))
    total[name][0] += 1
    total[name][1] += float(t.group(1))
print("| ioctl | calls | seconds inside (all threads) | ms per call |")
print("|---|---:|---:|---:|")
for name, (n, s) in sorted(total.items(), key=lambda kv: -kv[1][1]):
    print(f"| {name} | {n} | {s:.2f} | {1000 * s / n:.1f} |")
