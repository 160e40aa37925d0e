package main

import (
	"net"
	"net/url"
	"strings"
	"time"
)

// slugURLPeriod is how long the signed slug URLs handed to schedulers stay
// valid: at least this long, at most twice as long (builder.Signer). Flock
// signs them anew at every deploy, rollback and start, and the Marathon
// scheduler when it wakes an app from zero. Marathon fetches a slug again
// whenever it starts a task, so a task restarted past the expiry (a month
// or more after the last of these) cannot fetch its slug until the next.
const slugURLPeriod = 30 * 24 * time.Hour

// apiHosts are the lower-case host names the API is served under: --api's
// host and the hosts of the URLs given (--public-url, --artifact-url).
// The web package refuses other Host headers (against DNS rebinding,
// beside the loopback names it always allows), and no app may claim one
// of them as a domain.
func apiHosts(api string, urls ...string) []string {
	hosts := []string{}
	if h, _, err := net.SplitHostPort(api); err == nil && h != "" {
		hosts = append(hosts, strings.ToLower(h))
	}
	for _, s := range urls {
		if u, err := url.Parse(s); err == nil && u.Hostname() != "" {
			hosts = append(hosts, strings.ToLower(u.Hostname()))
		}
	}
	return hosts
}
