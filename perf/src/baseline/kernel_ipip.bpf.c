// SPDX-License-Identifier: GPL-2.0
//
// IP in IP (RFC 2003) for the kernel side of `brindle-perf crossnode`, on kernels built
// without the `ipip` tunnel driver (CONFIG_NET_IPIP unset), so that Linux still does the
// forwarding and only the 20-byte header is pushed and pulled here:
//
// - `lwt_xmit` runs on the route to the other node's workload block
//   (`ip route add <block> encap bpf xmit ... via <other node> dev eth0 mtu 1480`): it pushes
//   the outer header LOCAL_IP -> REMOTE_IP and asks the kernel to route the result again,
//   which is what ipip_tunnel_xmit does for `tunl0` with an `onlink` route.
// - `tc` runs on eth0 ingress: IPIP from the known node to this node loses its outer header
//   and continues into the IPv4 stack, which forwards the inner packet to the workload, as
//   ipip_rcv does. Anything else passes untouched.
//
// LOCAL_IP and REMOTE_IP are host-order u32s given with -D when the benchmark compiles this.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef LOCAL_IP
#error "compile with -DLOCAL_IP=0x..."
#endif
#ifndef REMOTE_IP
#error "compile with -DREMOTE_IP=0x..."
#endif

// RFC 791 header checksum over the 20-byte header with check = 0.
static __always_inline __u16 ipv4_checksum(const struct iphdr *ip)
{
	const __u16 *words = (const __u16 *)ip;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += words[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("lwt_xmit")
int ipip_encap(struct __sk_buff *skb)
{
	// RFC 2003 section 3.1: TTL of the outer header as for any packet this node sends; DF
	// set as Linux's ipip does with pmtudisc on (the default).
	struct iphdr outer = {
		.version = 4,
		.ihl = 5,
		.ttl = 64,
		.protocol = IPPROTO_IPIP,
		.frag_off = bpf_htons(0x4000),
		.saddr = bpf_htonl(LOCAL_IP),
		.daddr = bpf_htonl(REMOTE_IP),
	};
	outer.tot_len = bpf_htons(skb->len + sizeof(outer));
	outer.check = ipv4_checksum(&outer);
	if (bpf_lwt_push_encap(skb, BPF_LWT_ENCAP_IP, &outer, sizeof(outer)) != 0)
		return BPF_DROP;
	return BPF_LWT_REROUTE;
}

SEC("tc")
int ipip_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_IPIP || ip->ihl != 5)
		return TC_ACT_OK;
	// Only from the known node, to us: what ipip_rcv's tunnel lookup accepts for a tunnel
	// between the two nodes.
	if (ip->daddr != bpf_htonl(LOCAL_IP) || ip->saddr != bpf_htonl(REMOTE_IP))
		return TC_ACT_OK;
	if (bpf_skb_adjust_room(skb, -(int)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC, 0) != 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
