package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/khub-dev/khub/internal/knowledge"
)

func TestClassifyAddresses(t *testing.T) {
	cases := []struct {
		addr string
		want string
	}{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"93.184.216.34", ""},
		{"2606:4700:4700::1111", ""},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"10.0.0.5", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"172.32.0.1", ""},
		{"192.168.1.1", "private"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"fec0::1", "private"},
		{"169.254.169.254", "link-local"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", "reserved"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"100.64.0.1", "shared (CGNAT)"},
		{"100.127.255.255", "shared (CGNAT)"},
		{"100.128.0.1", ""},
		{"255.255.255.255", "reserved"},
		{"240.0.0.1", "reserved"},
		{"192.0.2.1", "documentation"},
		{"2001:db8::1", "documentation"},
		{"198.18.0.1", "benchmarking"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.0.0.5", "private"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::a9fe:a9fe", "link-local"}, // NAT64 form of 169.254.169.254
		{"64:ff9b::808:808", ""},             // NAT64 form of 8.8.8.8
		{"2002:7f00:1::1", "loopback"},       // 6to4 form of 127.0.0.1
		{"2002:808:808::1", ""},              // 6to4 form of 8.8.8.8
		{"::127.0.0.1", "reserved"},          // deprecated IPv4-compatible form
		{"100::1", "reserved"},               // discard prefix
		{"2001::1", "reserved"},              // Teredo
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			got := Classify(netip.MustParseAddr(tc.addr))
			if got != tc.want {
				t.Errorf("Classify(%s) = %q, want %q", tc.addr, got, tc.want)
			}
		})
	}
}

// publicLookup resolves every name to a fixed public address without using
// the network.
func publicLookup(context.Context, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
}

func TestCheckURLTable(t *testing.T) {
	cases := []struct {
		name         string
		url          string
		allowPrivate bool
		wantErr      string // substring of the message; "" means valid
	}{
		{"https name", "https://hooks.example.com/khub?token=abc", false, ""},
		{"http with port", "http://hooks.example.com:8080/in", false, ""},
		{"public IPv4", "https://93.184.216.34/hook", false, ""},
		{"public IPv6", "https://[2606:4700:4700::1111]/hook", false, ""},
		{"upper-case scheme", "HTTPS://hooks.example.com/", false, ""},
		{"empty", "", false, "is required"},
		{"too long", "https://hooks.example.com/" + strings.Repeat("a", MaxURLLen), false, "the maximum is 2048"},
		{"ftp scheme", "ftp://hooks.example.com/", false, `scheme "ftp"`},
		{"no scheme", "hooks.example.com/khub", false, `scheme ""`},
		{"javascript", "javascript:alert(1)", false, `scheme "javascript"`},
		{"no host", "https:///path", false, "has no host"},
		{"opaque", "http:hooks.example.com", false, "has no host"},
		{"user and password", "https://user:pw@hooks.example.com/", false, "user name or password"},
		{"user only", "https://user@hooks.example.com/", false, "user name or password"},
		{"fragment", "https://hooks.example.com/in#part", false, "fragment"},
		{"empty fragment", "https://hooks.example.com/in#", false, "fragment"},
		{"port zero", "https://hooks.example.com:0/", false, "invalid port"},
		{"port too large", "https://hooks.example.com:70000/", false, "invalid port"},
		{"bad escape", "https://hooks.example.com/%zz", false, "not a valid URL"},
		{"decimal IPv4", "http://2130706433/", false, "invalid host"},
		{"hex IPv4", "http://0x7f.1/", false, "invalid host"},
		{"short IPv4", "http://127.1/", false, "invalid host"},
		{"loopback literal", "http://127.0.0.1:9000/", false, "127.0.0.1 is a loopback address; start khub serve with --allow-private-destinations"},
		{"IPv6 loopback", "http://[::1]/", false, "loopback address"},
		{"private literal", "http://10.0.0.5/", false, "private address"},
		{"metadata literal", "http://169.254.169.254/latest/meta-data/", false, "link-local address"},
		{"mapped metadata", "http://[::ffff:169.254.169.254]/", false, "link-local address"},
		{"link-local IPv6 with zone", "http://[fe80::1%25eth0]/", false, "link-local address"},
		{"unspecified", "http://0.0.0.0/", false, "0.0.0.0 is an unspecified address"},
		{"multicast", "http://224.0.0.1/", false, "multicast address"},
		{"CGNAT", "http://100.64.1.1/", false, "shared (CGNAT) address"},
		{"unique local", "http://[fd00::1]/", false, "private address"},
		{"localhost", "http://localhost:8080/", false, `"localhost" is a loopback name`},
		{"localhost trailing dot", "http://localhost./", false, "loopback name"},
		{"localhost upper case", "http://LOCALHOST/", false, "loopback name"},
		{"sub localhost", "http://app.localhost/", false, "loopback name"},
		{"mDNS name", "http://printer.local/", false, "link-local name"},
		{"private allowed", "http://127.0.0.1:9000/", true, ""},
		{"localhost allowed", "http://localhost:9000/", true, ""},
		{"allowed still checks scheme", "ftp://127.0.0.1/", true, `scheme "ftp"`},
		{"allowed still checks user", "http://a:b@127.0.0.1/", true, "user name or password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckURL(tc.url, tc.allowPrivate, publicLookup)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want nil", tc.url, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckURL(%q) = nil, want error containing %q", tc.url, tc.wantErr)
			}
			var fe *knowledge.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is %T, want *knowledge.FieldError", err, err)
			}
			if fe.Field != "webhook.url" {
				t.Errorf("Field = %q, want webhook.url", fe.Field)
			}
			if !strings.Contains(fe.Message, tc.wantErr) {
				t.Errorf("message %q does not contain %q", fe.Message, tc.wantErr)
			}
		})
	}
}

func TestCheckURLParseErrorHidesQuery(t *testing.T) {
	err := CheckURL("https://hooks.example.com/%zz?token=hidden-value", false, publicLookup)
	if err == nil {
		t.Fatal("CheckURL accepted an invalid escape")
	}
	if strings.Contains(err.Error(), "hidden-value") {
		t.Errorf("error %q repeats the query string", err)
	}
}

func TestCheckURLResolvedAddresses(t *testing.T) {
	cases := []struct {
		name    string
		addrs   []string
		wantErr string
	}{
		{"loopback", []string{"127.0.0.1"}, `host "hooks.example.com" resolves to loopback address 127.0.0.1; start khub serve with --allow-private-destinations to allow it`},
		{"metadata", []string{"169.254.169.254"}, "resolves to link-local address 169.254.169.254"},
		{"private", []string{"10.0.0.5"}, "resolves to private address 10.0.0.5"},
		{"mapped loopback", []string{"::ffff:127.0.0.1"}, "resolves to loopback address"},
		{"one bad among good", []string{"93.184.216.34", "10.0.0.5"}, "resolves to private address 10.0.0.5"},
		{"no address", nil, "resolves to no address"},
		{"all public", []string{"93.184.216.34", "2606:4700:4700::1111"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var requested []string
			lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
				requested = append(requested, host)
				var out []netip.Addr
				for _, a := range tc.addrs {
					out = append(out, netip.MustParseAddr(a))
				}
				return out, nil
			}
			err := CheckURL("https://Hooks.Example.com/in", false, lookup)
			if len(requested) != 1 || requested[0] != "hooks.example.com" {
				t.Errorf("lookup got hosts %q, want one lookup of hooks.example.com", requested)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckURL = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("CheckURL = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestCheckURLLookupFailure(t *testing.T) {
	lookup := func(context.Context, string) ([]netip.Addr, error) {
		return nil, errors.New("no such host")
	}
	err := CheckURL("https://missing.example.com/", false, lookup)
	if err == nil || !strings.Contains(err.Error(), `"missing.example.com" could not be resolved (no such host)`) {
		t.Fatalf("CheckURL = %v, want a resolution error", err)
	}
}

func TestCheckURLAllowPrivateSkipsLookup(t *testing.T) {
	lookup := func(context.Context, string) ([]netip.Addr, error) {
		t.Error("lookup called although private destinations are allowed")
		return nil, nil
	}
	if err := CheckURL("https://receiver.test/", true, lookup); err != nil {
		t.Fatalf("CheckURL = %v, want nil", err)
	}
}

func TestDialControlBlocksLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	blocked := &net.Dialer{Control: DialControl(false)}
	conn, err := blocked.DialContext(context.Background(), "tcp", addr)
	if err == nil {
		conn.Close()
		t.Fatalf("dial to %s succeeded, want it blocked", addr)
	}
	if !errors.Is(err, ErrBlocked) {
		t.Errorf("dial error %v does not wrap ErrBlocked", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1 is a loopback address") {
		t.Errorf("dial error %q does not name the address and its kind", err)
	}

	allowed := &net.Dialer{Control: DialControl(true)}
	conn, err = allowed.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial with private allowed: %v", err)
	}
	conn.Close()
}

func TestHTTPClientBlocksPrivate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()

	client := NewHTTPClient(ClientConfig{})
	resp, err := client.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("request to loopback succeeded, want it blocked")
	}
	if !errors.Is(err, ErrBlocked) {
		t.Errorf("request error %v does not wrap ErrBlocked", err)
	}

	client = NewHTTPClient(ClientConfig{AllowPrivate: true})
	resp, err = client.Get(srv.URL)
	if err != nil {
		t.Fatalf("request with private allowed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.StatusCode)
	}
}

func TestHTTPClientDoesNotFollowRedirects(t *testing.T) {
	var followed bool
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) {
		followed = true
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := NewHTTPClient(ClientConfig{AllowPrivate: true}).Get(srv.URL + "/start")
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("status = %d, want 307 returned as is", resp.StatusCode)
	}
	if followed {
		t.Error("client followed the redirect")
	}
}

func TestHTTPClientIgnoresProxyEnvironment(t *testing.T) {
	// Go's proxy lookup never proxies loopback addresses, so a request to
	// a test server cannot show this; the transport setting can.
	transport, ok := NewHTTPClient(ClientConfig{}).Transport.(*http.Transport)
	if !ok {
		t.Fatal("client transport is not *http.Transport")
	}
	if transport.Proxy != nil {
		t.Error("transport has a Proxy function, want none")
	}
	if transport.MaxIdleConnsPerHost != DefaultMaxIdleConnsPerHost {
		t.Errorf("MaxIdleConnsPerHost = %d, want %d", transport.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost)
	}
}
