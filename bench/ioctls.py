"""Sums the time a traced run spent in each ZFS ioctl: `strace -f -T -e trace=ioctl -o F`
output in, a Markdown table out. strace names ZFS ioctls itself (ZFS_IOC_SNAPSHOT); an
older one prints numbers, named here from the installed zfs.h's enum. A call split by
another thread (`<unfinished ...>` ... `<... ioctl resumed>`) is joined by pid."""
import collections
import re
import sys

trace, header = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
names = {}
if header:
    for line in open(header):
        m = re.match(r"\s*ZFS_IOC_(\w+)\s*(?:=\s*ZFS_IOC_FIRST)?\s*,\s*/\*\s*(0x[0-9a-f]+)\s*\*/", line)
        if m:
            names[int(m.group(2), 16)] = m.group(1)


def name_of(request):
    if request.startswith("ZFS_IOC_"):
        return request[len("ZFS_IOC_"):]
    m = re.fullmatch(r"_IOC\(_IOC_NONE, 0x5a, (0x[0-9a-f]+), 0\)", request)
    code = 0x5A00 + int(m.group(1), 16) if m else None
    if m is None and re.fullmatch(r"0x5a[0-9a-f]{2}", request):
        code = int(request, 16)
    return None if code is None else names.get(code, hex(code))


total = collections.defaultdict(lambda: [0, 0.0])
pending = {}  # pid -> ioctl name of an unfinished call
for line in open(trace):
    pid = line.split(None, 1)[0]
    call = re.search(r"ioctl\(\d+, (ZFS_IOC_\w+|_IOC\([^)]*\)|0x[0-9a-f]+)", line)
    name = name_of(call.group(1)) if call else None
    if "<unfinished ...>" in line:
        if name:
            pending[pid] = name
        continue
    if "<... ioctl resumed>" in line:
        name = pending.pop(pid, None)
    t = re.search(r"<([\d.]+)>\s*$", line)
    if name and t:
        total[name][0] += 1
        total[name][1] += float(t.group(1))
print("| ioctl | calls | seconds inside (all threads) | ms per call |")
print("|---|---:|---:|---:|")
for name, (n, s) in sorted(total.items(), key=lambda kv: -kv[1][1]):
    print(f"| {name} | {n} | {s:.2f} | {1000 * s / n:.1f} |")
