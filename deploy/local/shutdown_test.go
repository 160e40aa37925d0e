package local

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/procgroup"
	"github.com/flock-paas/flock/deploy/testkit"
)

// TestStopWaitsForADeployInFlight: a Deploy that took its app's lock
// before the scheduler stopped (the engine's reconcile does, at start)
// must not start an instance or write a file after Run returned. Its slug
// is still being unpacked when Run's context ends; once the unpack goes
// on, Run returns only after the Deploy, and no process of the app is
// left running.
func TestStopWaitsForADeployInFlight(t *testing.T) {
	unpacking, release := make(chan struct{}), make(chan struct{})
	dir := t.TempDir()
	s, err := New(Config{Dir: dir, StopGrace: 2 * time.Second, Logger: quietLogger(), Unpack: func(slug, to string) error {
		close(unpacking)
		<-release
		return untar(slug, to)
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()

	spec := appSpec("late", "v1", 1)
	spec.SlugPath = makeSlug(t, map[string]string{"README": "late"})
	deployed := make(chan error, 1)
	// The deploy's own context outlives the scheduler's, as a caller's
	// may.
	go func() { deployed <- s.Deploy(context.Background(), spec, nil) }()
	<-unpacking
	cancel()
	// Run must wait for the deploy holding the lock.
	select {
	case <-ran:
		t.Fatal("Run returned while a Deploy was still unpacking its slug")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	<-deployed
	// Nothing of the app runs after Run returned.
	testkit.WaitFor(t, 5*time.Second, "no process of the late app", func() bool {
		return len(pidsUnder(dir)) == 0
	})
}

// pidsUnder lists live processes whose working directory is under dir.
func pidsUnder(dir string) []int {
	var out []int
	for _, pid := range procgroup.List() {
		cwd, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "cwd"))
		if err == nil && strings.HasPrefix(cwd, dir+"/") && procgroup.Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}
