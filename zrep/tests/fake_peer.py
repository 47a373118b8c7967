#!/usr/bin/env python3
"""A fake `ssh HOST zrep serve` for zrep's hostile-peer tests (zrep/tests/hostile_peer.rs).

Used as `zrep --ssh "python3 fake_peer.py CASE" ...`: zrep appends `-- HOST 'zrep serve'`,
which is ignored. CASE names the misbehaviour; the peer reads the client's hello first.
"""
import json
import random
import struct
import sys
import time

out, inp = sys.stdout.buffer, sys.stdin.buffer


def frame(kind, payload):
    out.write(kind + struct.pack(">I", len(payload)) + payload)
    out.flush()


def msg(obj):
    frame(b"J", json.dumps(obj).encode())


def read_frame():
    head = inp.read(5)
    if len(head) < 5:
        return None
    return head[:1], inp.read(struct.unpack(">I", head[1:])[0])


def drain():
    """Waits for the client to hang up, as a server that exits on end of input."""
    while inp.read(65536):
        pass


case = sys.argv[1]
# The client's hello: the fake speaks its version, but in the "version" case.
version = json.loads(read_frame()[1])["hello"]["version"]
hello = {"hello": {"version": version, "zrep": "0.1.0", "openzfs": "2.3.2", "timeout_secs": 600}}


def listing(*names):
    ds = [{"name": n, "kind": "filesystem", "guid": 1, "snapshots": [], "bookmarks": [],
           "written": 0, "available": 0, "referenced": 0, "resume_token": None,
           "resume_toguid": None, "resume_fromguid": None, "encrypted": False} for n in names]
    return {"state": {"datasets": ds, "more": False}}


if case == "huge":
    out.write(b"J\xff\xff\xff\xff")
elif case == "huge-then-stall":
    # Claims 4 GiB, sends nothing more and never exits: the client must not wait.
    out.write(b"J\xff\xff\xff\xff")
    out.flush()
    time.sleep(120)
elif case == "mid-frame":
    # Stops in the middle of a frame and hangs up.
    out.write(b'J\x00\x00\x01\x00{"hello":')
    sys.exit(0)
elif case == "version":
    msg({"hello": {"version": version + 1, "zrep": "9.9.9", "openzfs": "3.0", "timeout_secs": 1}})
elif case == "codec":
    # Picks a codec the client did not offer.
    msg({"hello": dict(hello["hello"], compress="brotli")})
elif case == "stall-mid-frame":
    # Half a frame, then silence without hanging up: the client's timeout ends it.
    out.write(b'J\x00\x00\x01\x00{"hel')
    out.flush()
    time.sleep(120)
elif case == "close":
    sys.exit(0)
elif case == "ssh-banner":
    out.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
elif case == "shell-error":
    sys.stderr.write("bash: line 1: zrep: command not found\n")
    sys.exit(127)
elif case == "bad-json":
    frame(b"J", b'{"hello": {"version": 1,')
elif case == "noise":
    rnd = random.Random(7)
    out.write(bytes(rnd.getrandbits(8) for _ in range(1 << 20)))
elif case.startswith("after-hello-"):
    msg(hello)
    read_frame()  # the request
    what = case[len("after-hello-"):]
    if what == "data":
        frame(b"D", b"x" * 10)
    elif what == "wrong":
        msg("streaming")
    elif what == "huge-data":
        out.write(b"D\xff\xff\xff\xff")
    elif what == "abort":
        frame(b"A", b"not json")
    elif what == "end":
        frame(b"E", b"")
    elif what == "deep":
        frame(b"J", b"[" * 100000)
    elif what == "unknown":
        msg({"launch": {"missiles": True}})
    elif what == "kind":
        frame(b"Q", b"")
    elif what == "close":
        sys.exit(0)
    elif what == "stall":
        out.flush()
        time.sleep(120)
    elif what == "outside":
        msg(listing("pool/fsx"))
    elif what == "shorter":
        msg(listing("pool"))
    elif what == "bad-name":
        msg(listing("pool/fs/../../etc"))
else:
    sys.exit(f"fake_peer.py: unknown case {case}")
out.flush()
drain()
