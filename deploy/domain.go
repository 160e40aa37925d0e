package deploy

import (
	"fmt"
	"strings"
)

// Domain is one host an app answers at besides <app>.<domain>, and where
// it comes from: "descriptor" (the descriptor's domains, changed by a
// deploy) or "added" (flock domains add, kept in the store).
type Domain struct {
	Host   string `json:"host"`
	Source string `json:"source"`
}

// Sources of a Domain.
const (
	DomainFromDescriptor = "descriptor"
	DomainAdded          = "added"
)

// domainRule says what is wrong with s as an app's domain, "" when
// nothing is: the one rule for the descriptor's domains and for
// flock domains add. Who else owns the host is the engine's check.
func domainRule(s string) string {
	switch {
	case strings.Contains(s, "*"):
		return "must not be a wildcard"
	case IsAddress(s):
		return "must be a host name, not an IP address (an address reaches every app and Flock)"
	case strings.Contains(s, ":"):
		return "must not include a port"
	case s != strings.ToLower(s):
		return "must be lower case"
	case !validHost(s):
		return "must be a host name: dot-separated DNS labels, at most 253 characters"
	case s == "localhost":
		return "must not be localhost (it is this machine, not one app)"
	}
	return ""
}

// CheckDomain says why host cannot be added as an app's domain. Hosts are
// compared in lower case, so callers lower-case it first (NormalizeHost).
func CheckDomain(host string) error {
	if r := domainRule(host); r != "" {
		return fmt.Errorf("domain %q %s: %w", host, r, ErrInvalid)
	}
	return nil
}

// NormalizeHost is how a user-typed host is compared and kept: trimmed,
// lower case, without a trailing dot.
func NormalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}
