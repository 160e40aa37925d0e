package deploy

import (
	"regexp"
	"strings"
)

// One home for the rules derived from an app's checks: the parser writes
// every default into the checks it returns, and every consumer (the
// embedded scheduler, the Marathon definition, HAProxy's check, the
// waker's probe) reads them through Normalized and EffectiveChecks, so an
// explicit "gracePeriodSeconds": 0 means 0 everywhere and a path the
// parser accepts is requested as written everywhere.

// checkPathRE keeps check paths to URL characters that are safe in an
// HAProxy config line and a request line: no spaces, quotes, backslashes,
// '#' or '$' (HAProxy reads "$NAME" as an environment variable in quoted
// words).
var checkPathRE = regexp.MustCompile(`^/[A-Za-z0-9/._~%!&()*+,;=:@?-]*$`)

// maxCheckPath bounds a check path.
const maxCheckPath = 1024

// ValidCheckPath reports whether p may be an HTTP check's path. A path
// starting "//" is refused: a URL parser reads it as a host.
func ValidCheckPath(p string) bool {
	return len(p) <= maxCheckPath && checkPathRE.MatchString(p) && !strings.HasPrefix(p, "//")
}

// Normalized returns c with the defaults of docs/descriptor.md where c
// leaves a field unset. A check from ParseDescriptor has them all
// already; a zero IntervalSeconds (which the parser never returns) marks
// a check built by hand or stored before a field existed, which gets
// every default. An explicit grace period of 0 stays 0.
func (c Check) Normalized() Check {
	if c.IntervalSeconds <= 0 {
		c.IntervalSeconds, c.TimeoutSeconds = defaultInterval, defaultTimeout
		c.GracePeriodSeconds, c.MaxConsecutiveFailures = defaultGrace, defaultMaxFailures
	}
	if c.TimeoutSeconds <= 0 {
		c.TimeoutSeconds = defaultTimeout
	}
	c.TimeoutSeconds = min(c.TimeoutSeconds, c.IntervalSeconds)
	if c.MaxConsecutiveFailures <= 0 {
		c.MaxConsecutiveFailures = defaultMaxFailures
	}
	c.GracePeriodSeconds = max(c.GracePeriodSeconds, 0)
	c.PortIndex = max(c.PortIndex, 0)
	return c
}

// EffectiveChecks returns the checks every scheduler runs for d,
// normalized: d's own, else the default TCP check on the first port.
func (d Descriptor) EffectiveChecks() []Check {
	if len(d.Checks) == 0 {
		return []Check{defaultCheck()}
	}
	out := make([]Check, len(d.Checks))
	for i, c := range d.Checks {
		out[i] = c.Normalized()
	}
	return out
}

// RoutingCheck is the check HAProxy runs on the app's servers and the
// waker probes before it proxies: the first effective check.
func (d Descriptor) RoutingCheck() Check { return d.EffectiveChecks()[0] }
