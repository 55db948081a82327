// Package netguard keeps webhook requests away from the hub's own machine
// and private networks. CheckURL validates a destination when an
// integration is created, and DialControl checks the address that is
// actually dialed, which also covers a name that resolves differently later
// (DNS rebinding).
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

// MaxURLLen is the longest webhook URL accepted, in bytes.
const MaxURLLen = 2048

// urlField is the request field that CheckURL errors name.
const urlField = "webhook.url"

// allowHint is the fix that error messages give for a blocked address.
const allowHint = "start khub serve with --allow-private-destinations to allow it"

// lookupTimeout bounds the DNS resolution in CheckURL.
const lookupTimeout = 5 * time.Second

// LookupFunc resolves a host name to its addresses.
type LookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// ErrBlocked is wrapped by the errors that DialControl returns.
var ErrBlocked = errors.New("destination address is not public")

// CheckURL validates a webhook URL: the scheme is http or https, a host is
// present, there is no user name, password or fragment, and the URL is at
// most MaxURLLen bytes. Unless allowPrivate is set, the host must be a
// public IP address or a name whose every address is public (see
// Classify). lookup resolves names; nil uses the system resolver. Errors
// are *knowledge.FieldError for the field "webhook.url".
func CheckURL(raw string, allowPrivate bool, lookup LookupFunc) error {
	u, err := parseWebhookURL(raw)
	if err != nil {
		return err
	}
	if allowPrivate {
		return nil
	}

	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if addr, err := netip.ParseAddr(host); err == nil {
		if kind := Classify(addr); kind != "" {
			return fieldError("host %s is %s address; %s", addr, withArticle(kind), allowHint)
		}
		return nil
	}
	if kind := classifyName(host); kind != "" {
		return fieldError("host %q is a %s name; %s", host, kind, allowHint)
	}

	if lookup == nil {
		lookup = systemLookup
	}
	// NOTE: CheckURL takes no context, so the lookup cannot be cancelled by
	// the caller's request; lookupTimeout bounds it instead.
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	addrs, err := lookup(ctx, host)
	if err != nil {
		return fieldError("host %q could not be resolved (%v): check the name, or give the receiver's IP address", host, err)
	}
	if len(addrs) == 0 {
		return fieldError("host %q resolves to no address: check the name, or give the receiver's IP address", host)
	}
	for _, addr := range addrs {
		if kind := Classify(addr); kind != "" {
			return fieldError("host %q resolves to %s address %s; %s", host, kind, addr, allowHint)
		}
	}
	return nil
}

// parseWebhookURL applies the checks that hold whether or not private
// destinations are allowed.
func parseWebhookURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fieldError("is required: give the http or https URL of the tool's webhook receiver")
	}
	if len(raw) > MaxURLLen {
		return nil, fieldError("is %d bytes long; the maximum is %d", len(raw), MaxURLLen)
	}

	u, err := url.Parse(raw)
	if err != nil {
		// The inner error omits the URL, which may carry a token in its
		// query string.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, fieldError("is not a valid URL: %v", err)
	}

	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fieldError("has scheme %q: use http or https", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, fieldError("has no host: give a URL such as https://hooks.example.com/khub")
	}
	if u.User != nil {
		return nil, fieldError("contains a user name or password: remove it, because receivers authenticate khub by the webhook-signature header")
	}
	if strings.Contains(raw, "#") {
		return nil, fieldError("contains a fragment (#...): remove it, because HTTP clients never send the fragment")
	}

	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fieldError("has invalid port %q: use 1 to 65535", p)
		}
	}
	host := u.Hostname()
	if _, err := netip.ParseAddr(host); err != nil && !validHostName(host) {
		return nil, fieldError("has invalid host %q: use a DNS name (punycode for international names) or an IP address in standard notation", host)
	}
	return u, nil
}

// validHostName rejects names that no DNS name can be, in particular
// numeric forms such as "2130706433" or "0x7f.1" that some resolvers read
// as IPv4 addresses.
func validHostName(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return false
	}
	labels := strings.Split(host, ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			ok := r == '-' || r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
			if !ok {
				return false
			}
		}
	}
	// No top-level domain starts with a digit, so a name whose last label
	// does is a numeric address form.
	last := labels[len(labels)-1]
	return last[0] < '0' || last[0] > '9'
}

// classifyName returns the kind of a special-use name that always points
// at the local machine or a local network, or "" for other names.
func classifyName(host string) string {
	switch {
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		return "loopback" // RFC 6761
	case host == "local" || strings.HasSuffix(host, ".local"):
		return "link-local" // mDNS, RFC 6762
	case host == "internal" || strings.HasSuffix(host, ".internal"),
		host == "home.arpa" || strings.HasSuffix(host, ".home.arpa"):
		return "private" // private-use and home-network names
	}
	return ""
}

func systemLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

func fieldError(format string, args ...any) error {
	return &knowledge.FieldError{Field: urlField, Message: fmt.Sprintf(format, args...)}
}

// DialControl returns a net.Dialer Control function that rejects the
// connection unless the address being dialed is public or allowPrivate is
// set. It runs after name resolution, once per address tried, so it checks
// the address actually used. Its errors wrap ErrBlocked.
func DialControl(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: cannot parse dial address %q: %v", ErrBlocked, address, err)
		}
		if kind := Classify(ap.Addr()); kind != "" {
			return fmt.Errorf("%w: %s is %s address; %s", ErrBlocked, ap.Addr(), withArticle(kind), allowHint)
		}
		return nil
	}
}

// withArticle puts "a" or "an" before an address kind from Classify, as in
// "an unspecified" or "a loopback".
func withArticle(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}
