package main

import (
	"net"
	"time"
)

// slugURLPeriod is how long the signed slug URLs handed to schedulers stay
// valid: at least this long, at most twice as long (builder.Signer). Flock
// signs them anew at every deploy, rollback and start, and the Marathon
// scheduler when it wakes an app from zero. Marathon fetches a slug again
// whenever it starts a task, so a task restarted past the expiry (a month
// or more after the last of these) cannot fetch its slug until the next.
const slugURLPeriod = 30 * 24 * time.Hour

// apiHosts are the names the API answers under (the web package refuses
// other Host headers, against DNS rebinding): --api's host, the loopback
// names (always), and the hosts of --public-url and --artifact-url.
func apiHosts(api string, urls ...string) []string {
	hosts := []string{}
	if h, _, err := net.SplitHostPort(api); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	return append(hosts, urls...)
}
