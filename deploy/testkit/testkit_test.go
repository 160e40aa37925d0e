package testkit

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// recorder is a testing.TB that records how the helper ended the test
// instead of ending it; Fatalf and Skipf stop the helper's goroutine as
// the real ones do.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) {
	r.failed = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder on a goroutine of its own, as the testing
// package runs a test, and returns what the helper did.
func run(t *testing.T, f func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	start := time.Now()
	r := run(t, func(tb testing.TB) {
		WaitFor(tb, 5*time.Second, "three calls", func() bool { return calls.Add(1) >= 3 })
	})
	if r.failed != "" {
		t.Fatalf("failed: %s", r.failed)
	}
	if calls.Load() != 3 {
		t.Errorf("cond called %d times, want 3", calls.Load())
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s for three polls", d)
	}
}

func TestWaitForFailsNamingWhatItWaitedFor(t *testing.T) {
	r := run(t, func(tb testing.TB) {
		WaitFor(tb, 30*time.Millisecond, "the moon", func() bool { return false })
	})
	if !strings.Contains(r.failed, "waiting for the moon") || !strings.Contains(r.failed, "30ms") {
		t.Errorf("failure = %q, want the timeout and what it waited for", r.failed)
	}
}

func TestFreePortIsFreeBindableAndNotRepeated(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p := FreePort(t)
		if p < firstPort || p > lastPort {
			t.Fatalf("port %d outside %d–%d", p, firstPort, lastPort)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("bind the free port: %v", err)
		}
		ln.Close()
	}
}

func TestFreePortSkipsATakenPort(t *testing.T) {
	ports.Lock()
	want := ports.next
	ports.Unlock()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", want))
	if err != nil {
		t.Skipf("port %d is taken by someone else: %v", want, err)
	}
	defer ln.Close()
	if p := FreePort(t); p == want {
		t.Fatalf("FreePort returned %d, which is bound", p)
	}
}

// TestFreePortSkipsAPortClaimedElsewhere: a port another test binary has
// handed out (its lock file is held: here through a second open file, as
// flock(2) locks of two open files conflict even in one process) is not
// handed out, though nothing listens on it yet.
func TestFreePortSkipsAPortClaimedElsewhere(t *testing.T) {
	ports.Lock()
	want := ports.next
	ports.Unlock()
	if err := os.MkdirAll(portLocks.dir, 0o777); err != nil {
		t.Skipf("no lock folder: %v", err)
	}
	f, err := os.OpenFile(filepath.Join(portLocks.dir, strconv.Itoa(want)), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Skipf("lock file: %v", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Skipf("port %d is claimed by another test binary: %v", want, err)
	}
	if p := FreePort(t); p == want {
		t.Fatalf("FreePort returned %d, which another binary claimed", p)
	}
}

func TestMissingSkipsOrFailsByTheEnvironment(t *testing.T) {
	const env = "FLOCK_TESTKIT_TEST_REQUIRE"
	t.Setenv(env, "")
	r := run(t, func(tb testing.TB) { Missing(tb, env, "no widget") })
	if r.failed != "" || !strings.Contains(r.skipped, "no widget") || !strings.Contains(r.skipped, env+"=1") {
		t.Errorf("without %s: skipped %q, failed %q; want a skip naming the variable", env, r.skipped, r.failed)
	}
	t.Setenv(env, "1")
	r = run(t, func(tb testing.TB) { Missing(tb, env, "no widget") })
	if r.skipped != "" || !strings.Contains(r.failed, "no widget") {
		t.Errorf("with %s=1: skipped %q, failed %q; want a failure", env, r.skipped, r.failed)
	}
}

func TestRequireCgroupsFailsOnAReasonUnderCI(t *testing.T) {
	t.Setenv(EnvRequireCgroups, "1")
	r := run(t, func(tb testing.TB) { RequireCgroups(tb, "no memory controller") })
	if r.failed == "" {
		t.Fatalf("RequireCgroups with a reason under %s=1 did not fail (skipped %q)", EnvRequireCgroups, r.skipped)
	}
}

func TestRequireHAProxyOffPath(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(EnvRequireHAProxy, "")
	if r := run(t, func(tb testing.TB) { RequireHAProxy(tb) }); !strings.Contains(r.skipped, "haproxy") || r.failed != "" {
		t.Errorf("without %s: skipped %q, failed %q; want a skip", EnvRequireHAProxy, r.skipped, r.failed)
	}
	t.Setenv(EnvRequireHAProxy, "1")
	if r := run(t, func(tb testing.TB) { RequireHAProxy(tb) }); !strings.Contains(r.failed, "haproxy") {
		t.Errorf("with %s=1: skipped %q, failed %q; want a failure", EnvRequireHAProxy, r.skipped, r.failed)
	}
}
