package main

import (
	"net"
	"net/url"
	"strings"
)

// apiHosts lists the host names the API is served under (its listen
// address and its public URL), which no app may claim as a domain.
func apiHosts(api, publicURL string) []string {
	var out []string
	if h, _, err := net.SplitHostPort(api); err == nil && h != "" {
		out = append(out, strings.ToLower(h))
	}
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		out = append(out, strings.ToLower(u.Hostname()))
	}
	return out
}
