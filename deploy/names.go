package deploy

import (
	"fmt"
	"strings"
)

// AppHost is the host an app answers at: <app>.<domain>, lower case. It is
// the one place the rule is written; the pipeline, the router and the
// waker ask here.
func AppHost(app, domain string) string { return app + "." + strings.ToLower(domain) }

// Hosts lists the hosts an app with this descriptor answers at: its own
// host (AppHost) first, then its domains.
func (d Descriptor) Hosts(app, domain string) []string {
	return append([]string{AppHost(app, domain)}, d.Domains...)
}

// ParseReleaseName parses "v3" into 3.
func ParseReleaseName(s string) (int, bool) {
	if len(s) < 2 || len(s) > 10 || s[0] != 'v' {
		return 0, false
	}
	n := 0
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n > 0
}

// ReleaseName formats version 3 as "v3".
func ReleaseName(version int) string { return fmt.Sprintf("v%d", version) }
