// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Brindle's XDP program: the one decision made in the kernel is "to the vRouter's AF_XDP
 * socket, or to the kernel stack". Every routing and policy decision is made in userspace.
 *
 * One program is shared by every interface the node forwards on; `ports` tells it what kind of
 * interface a frame arrived on and which XSKMAP slots belong to that interface's queues.
 *
 * - Workload ports (cali… veths): everything goes to the socket. The workload only ever talks
 *   to the vRouter (its default route is 169.254.1.1, answered by proxy ARP in userspace).
 * - Uplink: only IPv4 addressed into an IP pool, IP-in-IP (protocol 4, RFC 2003), and replies
 *   to flows the vRouter source-NATed (addressed to the node, TCP/UDP destination port or
 *   ICMP echo identifier in the NAT range, which the host's own sockets do not use) go to the
 *   socket. Everything else (ARP, the node's own SSH and BGP, IPv6) stays with the kernel, so
 *   the host keeps its own networking whatever the vRouter does.
 *
 * - Host port (the vRouter's end of the veth pair to the node's own stack): everything.
 *
 * With a host endpoint on the uplink (`host` map set), the uplink also sends IPv4 addressed to
 * the node to the socket, so that the endpoint's policy decides; but failsafe traffic (Calico's
 * failsafeInboundHostPorts by destination port, and replies to failsafeOutboundHostPorts by
 * source port) stays with the kernel, so that SSH, BGP and the datastore survive any policy,
 * and the vRouter itself. The TC egress program below (`brindle_host_egress`) sends the node's
 * own packets leaving the uplink the same way, round the veth pair to the vRouter.
 *
 * When no socket sits in the slot (the node service is not running, or crashed), the redirect
 * falls back to XDP_PASS: traffic goes to the kernel rather than into a black hole; except
 * replies to source-NATed flows, dropped (see brindle_xdp) so that they outlive a restart.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_SOCKETS 4096
#define MAX_PORTS 4096
#define MAX_POOL_CIDRS 1024

/* RFC 792 message types; an echo's identifier is at offset 4 of the ICMP header. */
#define ICMP_ECHO_REPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO_REQUEST 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETER_PROB 12

#define PORT_KIND_WORKLOAD 0
#define PORT_KIND_UPLINK 1
#define PORT_KIND_HOST 2
#define MAX_FAILSAFE_PORTS 256

/* tcx verdict "on to the next program / the stack" (<linux/bpf.h> of Linux 6.6; Debian 12's
 * headers predate it). */
#ifndef TCX_NEXT
#define TCX_NEXT -1
#endif

/* Kept in sync with `PortEntry` in fastpath/src/xdp.rs. */
struct port {
	__u32 first_slot;
	__u32 queues;
	__u32 kind;
};

/* Kept in sync with `PoolKey` in fastpath/src/xdp.rs; `addr` is in network byte order. */
struct pool_key {
	__u32 prefixlen;
	__u32 addr;
};

/* Kept in sync with `SnatEntry` in fastpath/src/xdp.rs; `node` in network byte order, the
 * range in host order; `node` 0: no NAT outgoing. */
struct snat {
	__u32 node;
	__u16 first;
	__u16 last;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct snat);
} snat SEC(".maps");

/* Kept in sync with `HostEntry` in fastpath/src/xdp.rs: the node's address (network byte
 * order) and the ifindex of the kernel's end of the host veth pair; all zero: no host
 * endpoint on the uplink, the node's traffic is the kernel's alone. */
struct host {
	__u32 node;
	__u32 kernel_ifindex;
};

/* Kept in sync with `FailsafeKey` in fastpath/src/xdp.rs; `port` in host byte order. */
struct failsafe_key {
	__u8 protocol;
	__u8 pad;
	__u16 port;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct host);
} host SEC(".maps");

/* Calico's failsafeInboundHostPorts and failsafeOutboundHostPorts. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FAILSAFE_PORTS);
	__type(key, struct failsafe_key);
	__type(value, __u8);
} failsafe_in SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FAILSAFE_PORTS);
	__type(key, struct failsafe_key);
	__type(value, __u8);
} failsafe_out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_SOCKETS);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, struct port);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_POOL_CIDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pool_key);
	__type(value, __u8);
} pool_cidrs SEC(".maps");

/* Whether an ICMP error (RFC 792) quotes a packet the vRouter sent from a NAT port: the
 * quoted IPv4 header (without options) and the first 8 bytes of its data, whose source port
 * (or echo identifier) is the translated one. */
static __always_inline int quotes_nat_port(void *quote, void *data_end, struct snat *nat)
{
	struct iphdr *q = quote;
	void *ql4;
	__u16 port;

	if ((void *)(q + 1) > data_end || q->ihl != 5)
		return 0;
	ql4 = (void *)(q + 1);
	if (ql4 + 8 > data_end)
		return 0;
	if (q->protocol == IPPROTO_TCP || q->protocol == IPPROTO_UDP)
		port = bpf_ntohs(*(__u16 *)ql4);
	else if (q->protocol == IPPROTO_ICMP && *(__u8 *)ql4 == ICMP_ECHO_REQUEST)
		port = bpf_ntohs(*(__u16 *)(ql4 + 4));
	else
		return 0;
	return port >= nat->first && port <= nat->last;
}

/* Whether an IPv4 packet to the node is a reply to a flow the vRouter source-NATed, or an
 * ICMP error about one. */
static __always_inline int snat_reply(struct iphdr *ip, void *data_end)
{
	__u32 zero = 0;
	struct snat *nat = bpf_map_lookup_elem(&snat, &zero);
	void *l4;
	__u16 port;

	if (!nat || nat->node == 0 || ip->daddr != nat->node)
		return 0;
	/* Later fragments carry no ports. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return 0;
	if (ip->ihl < 5)
		return 0;
	l4 = (void *)ip + ip->ihl * 4;
	if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) {
		/* Destination port: bytes 2-3 of both headers. */
		if (l4 + 4 > data_end)
			return 0;
		port = bpf_ntohs(*(__u16 *)(l4 + 2));
		return port >= nat->first && port <= nat->last;
	}
	if (ip->protocol == IPPROTO_ICMP) {
		__u8 *icmp = l4;

		if (l4 + 8 > data_end)
			return 0;
		if (icmp[0] == ICMP_ECHO_REPLY) {
			port = bpf_ntohs(*(__u16 *)(l4 + 4));
			return port >= nat->first && port <= nat->last;
		}
		if (icmp[0] == ICMP_DEST_UNREACH || icmp[0] == ICMP_TIME_EXCEEDED || icmp[0] == ICMP_PARAMETER_PROB)
			return quotes_nat_port(l4 + 8, data_end, nat);
		return 0;
	}
	return 0;
}

/* Whether (protocol, port) is in a failsafe map. */
static __always_inline int failsafe(void *map, __u8 protocol, __u16 port)
{
	struct failsafe_key key = { .protocol = protocol, .pad = 0, .port = port };

	return bpf_map_lookup_elem(map, &key) != 0;
}

/* Whether a TCP or UDP packet is failsafe traffic of the node: to an inbound failsafe port
 * or from an outbound one (`inbound`: the packet comes in), or, going out, to an outbound
 * failsafe port or from an inbound one. Stateless, as the ports are what identifies it; a
 * packet without ports (ICMP, a later fragment) is not failsafe. */
static __always_inline int failsafe_packet(struct iphdr *ip, void *data_end, int inbound)
{
	void *l4;
	__u16 sport, dport;

	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return 0;
	if ((ip->frag_off & bpf_htons(0x1fff)) || ip->ihl < 5)
		return 0;
	l4 = (void *)ip + ip->ihl * 4;
	if (l4 + 4 > data_end)
		return 0;
	sport = bpf_ntohs(*(__u16 *)l4);
	dport = bpf_ntohs(*(__u16 *)(l4 + 2));
	if (inbound)
		return failsafe(&failsafe_in, ip->protocol, dport) || failsafe(&failsafe_out, ip->protocol, sport);
	return failsafe(&failsafe_out, ip->protocol, dport) || failsafe(&failsafe_in, ip->protocol, sport);
}

/* Whether an IPv4 packet on the uplink is for the node's host endpoint policy. */
static __always_inline int host_wants(struct iphdr *ip, void *data_end)
{
	__u32 zero = 0;
	struct host *h = bpf_map_lookup_elem(&host, &zero);

	if (!h || h->node == 0 || ip->daddr != h->node)
		return 0;
	return !failsafe_packet(ip, data_end, 1);
}

/* What uplink_wants() answers. */
#define UPLINK_KERNEL 0
#define UPLINK_VROUTER 1
/* A reply to a source-NATed flow (or an ICMP error about one). */
#define UPLINK_NAT_REPLY 2

/* Whether an uplink frame is for the vRouter: IPv4 into a pool, IPIP, a NAT reply, or (with a
 * host endpoint) the node's own non-failsafe traffic. */
static __always_inline int uplink_wants(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct pool_key key;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return 0;
	if (ip->version != 4)
		return 0;
	if (ip->protocol == IPPROTO_IPIP)
		return 1;
	key.prefixlen = 32;
	key.addr = ip->daddr;
	if (bpf_map_lookup_elem(&pool_cidrs, &key))
		return 1;
	if (snat_reply(ip, data_end))
		return UPLINK_NAT_REPLY;
	return host_wants(ip, data_end);
}

SEC("xdp")
int brindle_xdp(struct xdp_md *ctx)
{
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 queue = ctx->rx_queue_index;
	struct port *port;

	port = bpf_map_lookup_elem(&ports, &ifindex);
	if (!port)
		return XDP_PASS;
	/* A queue with no socket configured must not borrow the next port's slots. */
	if (queue >= port->queues)
		return XDP_PASS;
	if (port->kind == PORT_KIND_UPLINK) {
		int wants = uplink_wants(ctx);

		if (wants == UPLINK_KERNEL)
			return XDP_PASS;
		/* While no socket serves the queue (the node service is restarting), a reply to a
		 * NAT port is dropped, not passed: the node's stack has no socket on those ports
		 * (they lie above ip_local_port_range) and would answer with a RST or a port
		 * unreachable, killing the workload's connection; dropped, it is sent again by the
		 * remote and translated by the restarted vRouter, which kept the flow (see
		 * conntrack::persist). */
		if (wants == UPLINK_NAT_REPLY)
			return bpf_redirect_map(&xsks, port->first_slot + queue, XDP_DROP);
	}
	return bpf_redirect_map(&xsks, port->first_slot + queue, XDP_PASS);
}

/* TC egress on the uplink (tcx, attached only while a host endpoint is enforced and held by
 * the node service, so it goes when the service does): the node's own IPv4 packets, but for
 * failsafe traffic, are redirected out of the kernel's end of the host veth pair; the vRouter
 * receives them on its end, polices them and sends them out of the uplink itself. The redirect
 * goes through that device's transmit path, which completes checksums and segments (offloads
 * are off there), so that the vRouter sees finished packets. The vRouter's own frames never
 * pass here (AF_XDP transmits below the qdisc layer). */
SEC("tcx/egress")
int brindle_host_egress(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct host *h = bpf_map_lookup_elem(&host, &zero);
	void *data, *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;

	if (!h || h->node == 0 || h->kernel_ifindex == 0)
		return TCX_NEXT;
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TCX_NEXT;
	/* Headers up to the ports in the linear part (a no-op when they are already). */
	if (bpf_skb_pull_data(skb, sizeof(struct ethhdr) + sizeof(struct iphdr) + 4) < 0)
		return TCX_NEXT;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->version != 4)
		return TCX_NEXT;
	/* Only the node's own packets: nothing else leaves the node through its stack. */
	if (ip->saddr != h->node)
		return TCX_NEXT;
	if (failsafe_packet(ip, data_end, 0))
		return TCX_NEXT;
	return bpf_redirect(h->kernel_ifindex, 0);
}

char _license[] SEC("license") = "Dual BSD/GPL";
