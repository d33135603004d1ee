#!/usr/bin/env python3
"""Cuts seed files out of capture.sh's captures (standard library only).

bgp.pcap: each direction's TCP payload reassembled (in sequence order) -> one stream seed
per direction for bgp_message, each message on its own for bgp_message, each UPDATE's body
for bgp_update. frames.pcap: each distinct Ethernet frame -> a seed for pipeline.
"""
import hashlib, os, struct, sys

def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    assert linktype == 1, "Ethernet captures only"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        yield data[off + 16:off + 16 + incl]
        off += 16 + incl

def write(directory, name, blob):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(blob)

def checksum(header):
    total = sum(struct.unpack(">%dH" % (len(header) // 2), header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF

def ipip(frame, src, dst):
    inner = frame[14:14 + struct.unpack(">H", frame[16:18])[0]]
    outer = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(inner), 0x4242, 0, 64, 4, 0, src, dst))
    outer[10:12] = struct.pack(">H", checksum(bytes(outer)))
    return frame[:14] + bytes(outer) + inner

def readdressed(frame, dst):
    """`frame` (Ethernet, IPv4) sent to `dst`, its IPv4 and TCP/UDP checksums made again."""
    f = bytearray(frame)
    ihl = (f[14] & 15) * 4
    total = struct.unpack(">H", f[16:18])[0]
    f[30:34] = dst
    f[24:26] = b"\0\0"
    f[24:26] = struct.pack(">H", checksum(bytes(f[14:14 + ihl])))
    proto, l4 = f[23], 14 + ihl
    fragment = struct.unpack(">H", f[20:22])[0] & 0x3FFF
    if proto in (6, 17) and not fragment:
        at = l4 + (16 if proto == 6 else 6)
        f[at:at + 2] = b"\0\0"
        segment = bytes(f[l4:14 + total])
        pseudo = bytes(f[26:34]) + struct.pack(">BBH", 0, proto, len(segment))
        data = pseudo + segment + (b"\0" if len(segment) % 2 else b"")
        f[at:at + 2] = struct.pack(">H", checksum(data) or (0xFFFF if proto == 17 else 0))
    return bytes(f)

def tcp_streams(path):
    streams = {}
    for frame in packets(path):
        if frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6:
            continue
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        payload = tcp[(tcp[12] >> 4) * 4:]
        if payload:
            streams.setdefault((sport, dport), {})[seq] = payload
    out = {}
    for key, segments in streams.items():
        out[key] = b"".join(segments[s] for s in sorted(segments))
    return out

def messages(stream):
    off = 0
    while off + 19 <= len(stream):
        length = struct.unpack(">H", stream[off + 16:off + 18])[0]
        yield stream[off:off + length]
        off += length

def main(captures, corpus):
    for (sport, dport), stream in sorted(tcp_streams(os.path.join(captures, "bgp.pcap")).items()):
        who = "bird" if sport == 179 and dport != 179 else "peer"
        who = f"{sport}-to-{dport}"
        write(os.path.join(corpus, "bgp_message"), f"stream-{who}", stream[:8192])
        for m in messages(stream):
            digest = hashlib.sha1(m).hexdigest()[:12]
            kind = {1: "open", 2: "update", 3: "notification", 4: "keepalive", 5: "route-refresh"}.get(m[18], "other")
            if kind == "keepalive":
                continue
            write(os.path.join(corpus, "bgp_message"), f"{kind}-{digest}", m)
            if kind == "update":
                write(os.path.join(corpus, "bgp_update"), f"update-{digest}", m[19:])
    seen = set()
    for frame in packets(os.path.join(captures, "frames.pcap")):
        digest = hashlib.sha1(frame).hexdigest()[:12]
        if digest not in seen:
            seen.add(digest)
            write(os.path.join(corpus, "pipeline"), f"frame-{digest}", frame)
            # The same packet to the addresses the pipeline target routes specially: a
            # workload on another node behind IPIP, a floating IP, the internet (NAT outgoing).
            if frame[12:14] == b"\x08\x00" and frame[23] in (1, 6, 17) and frame[26:30] == bytes([192, 168, 0, 2]):
                for name, dst in (("to-ipip", [192, 168, 1, 7]), ("to-floating", [198, 51, 100, 7]), ("to-internet", [8, 8, 8, 8])):
                    write(os.path.join(corpus, "pipeline"), f"{name}-{digest}", readdressed(frame, bytes(dst)))
            # The same packet through an IP-in-IP tunnel (RFC 2003) from the other node.
            if frame[12:14] == b"\x08\x00" and frame[23] in (1, 6, 17):
                wrapped = ipip(frame, bytes([10, 0, 0, 20]), bytes([10, 0, 0, 10]))
                write(os.path.join(corpus, "pipeline"), f"ipip-{digest}", wrapped)

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
