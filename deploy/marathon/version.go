package marathon

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Marathon's version decides what Flock may ask of it (docs/marathon.md
// lists what differs between 1.4 and 1.10). It is read from /v2/info and
// kept for a Resync period.

// mesosChecksSince is the first Marathon with Mesos health checks
// (MESOS_HTTP, MESOS_TCP; changelog "Changes from 1.3.10 to 1.4.0"; they
// need Mesos ≥1.1, which Marathon 1.4 requires anyway).
var mesosChecksSince = [2]int{1, 4}

// readVersion refreshes the cached Marathon version when it is older than
// a Resync; a failure keeps the last one (or none: the checks Marathon ran
// itself, which every version supports).
func (s *Scheduler) readVersion(ctx context.Context) {
	s.mu.Lock()
	fresh := s.versionAt.After(time.Now().Add(-s.cfg.Resync))
	s.mu.Unlock()
	if fresh {
		return
	}
	v, err := s.api.Version(ctx)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.version, s.versionAt = v, time.Now()
	s.mu.Unlock()
}

// mesosChecks reports whether the Marathon last read runs Mesos health
// checks.
func (s *Scheduler) mesosChecks() bool {
	s.mu.Lock()
	v := s.version
	s.mu.Unlock()
	mm, ok := parseVersion(v)
	return ok && (mm[0] > mesosChecksSince[0] || (mm[0] == mesosChecksSince[0] && mm[1] >= mesosChecksSince[1]))
}

// parseVersion reads major and minor from "1.10.17", "1.5.0 (marathontest)",
// "1.4.0-RC1".
func parseVersion(v string) ([2]int, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return [2]int{}, false
	}
	major, err1 := strconv.Atoi(parts[0])
	end := strings.IndexFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		parts[1] = parts[1][:end]
	}
	minor, err2 := strconv.Atoi(parts[1])
	return [2]int{major, minor}, err1 == nil && err2 == nil
}
