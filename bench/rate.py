"""Samples the bytes a process's main thread writes (`wchar`), once a second, from the
moment it passes 1 MiB until the process ends: what `zrep --bwlimit` puts on the wire
when it pushes over ssh. Prints key=value lines: seconds, average and peak second as
fractions of LIMIT (bytes per second), and each whole second in MiB.

    python3 rate.py PID LIMIT_BYTES_PER_SECOND
"""
import sys
import time

pid, limit = sys.argv[1], int(sys.argv[2])


def written():
    try:
        with open(f"/proc/{pid}/task/{pid}/io") as f:
            for line in f:
                if line.startswith("wchar: "):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


while (w := written()) is not None and w < 1 << 20:
    time.sleep(0.02)
last, tick, seconds = w, time.monotonic(), []
while last is not None:
    tick += 1
    time.sleep(max(0.0, tick - time.monotonic()))
    w = written()
    if w is None:
        break
    seconds.append(w - last)
    last = w
full = seconds[:-1]  # the last second the stream ended inside is not whole
if not full:
    print("seconds=0")
    sys.exit(1)
print(f"seconds={len(full)}")
print(f"average={sum(full) / len(full) / limit:.3f}")
print(f"peak={max(full) / limit:.3f}")
print("mib=" + " ".join(f"{b / (1 << 20):.2f}" for b in full))
