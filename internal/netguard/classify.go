package netguard

import (
	"net/netip"
)

type addrRange struct {
	prefix netip.Prefix
	kind   string
}

// v4Ranges are the IPv4 blocks that are not globally reachable unicast,
// from the IANA IPv4 Special-Purpose Address Registry (RFC 6890 and
// updates), plus multicast and the reserved class E block.
var v4Ranges = []addrRange{
	{netip.MustParsePrefix("0.0.0.0/32"), "unspecified"},
	{netip.MustParsePrefix("0.0.0.0/8"), "reserved"}, // "this network"
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"}, // includes the 169.254.169.254 cloud metadata service
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"}, // IETF protocol assignments
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "reserved"}, // deprecated 6to4 relay anycast
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // includes broadcast 255.255.255.255
}

// v6Ranges are the IPv6 blocks inside 2000::/3 (global unicast) that are
// not globally reachable, from the IANA IPv6 Special-Purpose Address
// Registry. Addresses outside 2000::/3 are handled in Classify.
var v6Ranges = []addrRange{
	{netip.MustParsePrefix("2001::/23"), "reserved"}, // IETF protocol assignments, includes Teredo 2001::/32
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
}

var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	uniqueLocal6   = netip.MustParsePrefix("fc00::/7")
	siteLocal6     = netip.MustParsePrefix("fec0::/10") // deprecated, routed like private space
	nat64Prefix    = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour      = netip.MustParsePrefix("2002::/16")
)

// Classify returns "" for a globally reachable unicast address, else the
// kind of address: "loopback", "private", "link-local", "unspecified",
// "multicast", "shared (CGNAT)", "documentation", "benchmarking" or
// "reserved". IPv6 forms that embed an IPv4 address (IPv4-mapped, NAT64
// 64:ff9b::/96 and 6to4 2002::/16) are classified by that IPv4 address.
func Classify(addr netip.Addr) string {
	addr = addr.WithZone("")
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	if addr.Is4() {
		for _, r := range v4Ranges {
			if r.prefix.Contains(addr) {
				return r.kind
			}
		}
		return ""
	}
	if !addr.IsValid() {
		return "unspecified"
	}

	switch {
	case addr.IsUnspecified():
		return "unspecified"
	case addr.IsLoopback():
		return "loopback"
	case addr.IsLinkLocalUnicast():
		return "link-local"
	case addr.IsMulticast():
		return "multicast"
	case uniqueLocal6.Contains(addr), siteLocal6.Contains(addr), nat64Local.Contains(addr):
		return "private"
	case nat64Prefix.Contains(addr):
		b := addr.As16()
		return Classify(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	case sixToFour.Contains(addr):
		b := addr.As16()
		return Classify(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	case !globalUnicast6.Contains(addr):
		// Everything else outside 2000::/3, such as IPv4-compatible ::/96
		// and the discard prefix 100::/64, is unassigned or special.
		return "reserved"
	}
	for _, r := range v6Ranges {
		if r.prefix.Contains(addr) {
			return r.kind
		}
	}
	return ""
}
