package netguard

import (
	"net"
	"net/http"
	"time"
)

// ClientConfig configures NewHTTPClient.
type ClientConfig struct {
	// AllowPrivate lets requests reach loopback and private networks.
	AllowPrivate bool
	// Timeout bounds one request, from dialing to reading the body; zero
	// means 15s.
	Timeout time.Duration
	// MaxIdleConnsPerHost is the number of keep-alive connections kept
	// per receiver; zero means 8.
	MaxIdleConnsPerHost int
}

// Default client settings.
const (
	DefaultTimeout             = 15 * time.Second
	DefaultMaxIdleConnsPerHost = 8
)

// NewHTTPClient returns a client for webhook requests. Its dialer checks
// every address with DialControl, it follows no redirects (the 3xx response
// is returned as is), it ignores HTTP_PROXY and related environment
// variables, and it keeps connections alive for reuse.
func NewHTTPClient(cfg ClientConfig) *http.Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxIdleConnsPerHost <= 0 {
		cfg.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   DialControl(cfg.AllowPrivate),
	}
	transport := &http.Transport{
		// A proxy would dial the destination itself, past DialControl.
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		// A redirect could lead to an address that the receiver chooses,
		// so the 3xx response itself is returned and counts as a failure.
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
