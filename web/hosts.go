package web

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// hosts is the set of names the API is served under. A page on another
// site that rebinds its DNS name to this machine's address reaches the
// API with its own name in Host; refusing names not in this set keeps its
// script from reading the API through a visitor's browser. IP literals
// pass: no DNS answer can rebind them, so a page that names an IP is
// served by whoever holds that IP.
type hosts map[string]bool

// newHosts builds the set from names given as "host", "host:port",
// "[::1]:port" or a URL ("https://flock.example.com/"), plus the loopback
// names. Ports are ignored: rebinding changes the name, not the port.
func newHosts(names []string) hosts {
	h := hosts{"localhost": true, "127.0.0.1": true, "::1": true}
	for _, n := range names {
		if name := hostName(n); name != "" {
			h[name] = true
		}
	}
	return h
}

// hostName is the lower-case host name of a Host header, host:port or URL,
// without port, brackets or trailing dot.
func hostName(s string) string {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return ""
		}
		s = u.Host
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	return strings.TrimSuffix(strings.ToLower(strings.Trim(s, "[]")), ".")
}

// allows reports whether a request's Host names this API.
func (h hosts) allows(host string) bool {
	name := hostName(host)
	if name == "" {
		return false
	}
	return h[name] || net.ParseIP(name) != nil
}

// checkHost answers 421 with a JSON error to a request whose Host is not a
// name of this API. /healthz and /artifacts/ are exempt: the first tells
// nothing, the second answers only the token or a signed URL, which a
// rebinding page does not have (and schedulers fetch slugs under
// --artifact-url, which may name this machine otherwise).
func (s *Server) checkHost(c *gin.Context) {
	p := c.Request.URL.Path
	if p == "/healthz" || strings.HasPrefix(p, "/artifacts/") || s.hosts.allows(c.Request.Host) {
		c.Next()
		return
	}
	s.fail(c, fmt.Errorf("%w: %q is not a name this Flock API is served under (--api, --public-url)", errHost, c.Request.Host))
}
