package testkit

import (
	"os"
	"os/exec"
	"testing"
)

// The variables that turn a missing real part from a skip into a
// failure. CI (.ci/run) sets all three, so a test there can never pass by
// skipping.
const (
	EnvRequireHAProxy  = "FLOCK_REQUIRE_HAPROXY"
	EnvRequireChromium = "FLOCK_REQUIRE_CHROMIUM"
	EnvRequireCgroups  = "FLOCK_REQUIRE_CGROUPS"
)

// Missing skips tb because of why, or fails it when the environment
// variable env is "1".
func Missing(tb testing.TB, env, why string) {
	tb.Helper()
	if os.Getenv(env) == "1" {
		tb.Fatalf("%s, and %s=1", why, env)
	}
	tb.Skipf("%s (set %s=1 to fail instead)", why, env)
}

// RequireHAProxy returns the path of the haproxy on PATH, the one the
// router runs (router.Config.Binary defaults to "haproxy"). Without one
// it skips tb, or fails it under FLOCK_REQUIRE_HAPROXY=1.
func RequireHAProxy(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("haproxy")
	if err != nil {
		Missing(tb, EnvRequireHAProxy, "haproxy is not installed (apt-get install haproxy): "+err.Error())
	}
	return p
}

// RequireChromium returns Debian's Chromium, or the chromium on PATH.
// Without one it skips tb, or fails it under FLOCK_REQUIRE_CHROMIUM=1.
func RequireChromium(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	Missing(tb, EnvRequireChromium, "chromium is missing (apt-get install -y chromium)")
	return ""
}

// RequireRoot skips tb when the tests do not run as root (apps and builds
// then run as the test's own user, and no cgroup can be made), or fails
// it under FLOCK_REQUIRE_CGROUPS=1, which CI sets and runs as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Missing(tb, EnvRequireCgroups, "not root: apps and builds run as the test's own user")
	}
}

// RequireCgroups is RequireRoot, then skips (or fails under
// FLOCK_REQUIRE_CGROUPS=1) when reason, the caller's finding about the
// cgroup hierarchy, is not empty.
func RequireCgroups(tb testing.TB, reason string) {
	tb.Helper()
	RequireRoot(tb)
	if reason != "" {
		Missing(tb, EnvRequireCgroups, reason)
	}
}

// RequireTools skips tb when one of the named programs is not on PATH
// (git, npm, python3, go: tools a developer may lack and CI installs).
func RequireTools(tb testing.TB, names ...string) {
	tb.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			tb.Skipf("%s is not installed: %v", name, err)
		}
	}
}
