package engine

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"

	"github.com/google/go-cmp/cmp"
)

func TestStoreKeepsStateAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.updateApp("web", true, func(r *appRecord) error {
		r.Current, r.LastVersion, r.Desired, r.Asleep = "v2", 2, 3, true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for v := 1; v <= 12; v++ {
		if err := s.putRelease(deploy.Release{App: "web", Name: deploy.ReleaseName(v), Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.putRelease(deploy.Release{App: "web2", Name: "v1", Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.putDeploy(deploy.Rollout{ID: "1", App: "web", Status: deploy.RolloutSucceeded}); err != nil {
		t.Fatal(err)
	}

	// A second Flock on the same data dir is refused, not let in to corrupt it.
	if _, err := OpenStore(dir); err == nil {
		t.Fatal("second OpenStore on the same dir succeeded")
	}
	s.Close()

	s, err = OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec, err := s.app("web")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Current != "v2" || rec.Desired != 3 || !rec.Asleep {
		t.Errorf("app after reopen: %+v", rec)
	}
	rels, err := s.releases("web")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rels {
		names = append(names, r.Name)
	}
	want := []string{"v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("releases of web, in version order (-want +got):\n%s", diff)
	}

	if err := s.deleteApp("web"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.app("web"); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("deleted app: err %v, want ErrNotFound", err)
	}
	if rels, _ := s.releases("web"); len(rels) != 0 {
		t.Errorf("releases left after delete: %d", len(rels))
	}
	if ds, _ := s.deploys("web"); len(ds) != 0 {
		t.Errorf("deploys left after delete: %d", len(ds))
	}
	if rels, _ := s.releases("web2"); len(rels) != 1 {
		t.Errorf("deleting web touched web2: %d releases", len(rels))
	}
}

func TestState(t *testing.T) {
	tests := []struct {
		name      string
		rec       appRecord
		healthy   int
		restarted bool
		deploying bool
		waking    bool
		want      deploy.State
	}{
		{"first deploy", appRecord{}, 0, false, true, false, deploy.StateDeploying},
		{"first deploy failed", appRecord{Failed: "build failed"}, 0, false, false, false, deploy.StateFailed},
		{"first deploy failed, no version", appRecord{LastVersion: 1}, 0, false, false, false, deploy.StateFailed},
		{"created empty (flock create)", appRecord{}, 0, false, false, false, deploy.StateStopped},
		{"running", appRecord{Current: "v1", Desired: 1}, 1, false, false, false, deploy.StateRunning},
		{"asleep", appRecord{Current: "v1", Desired: 1, Asleep: true}, 0, false, false, false, deploy.StateSleeping},
		{"stopped", appRecord{Current: "v1"}, 0, false, false, false, deploy.StateStopped},
		{"waking", appRecord{Current: "v1", Desired: 1}, 0, false, false, true, deploy.StateWaking},
		{"wake failed", appRecord{Current: "v1", Desired: 1, Failed: "wake timed out"}, 0, false, false, false, deploy.StateFailed},
		{"redeploying", appRecord{Current: "v1", Desired: 1}, 1, false, true, false, deploy.StateDeploying},
		{"crashed", appRecord{Current: "v1", Desired: 1}, 0, true, false, false, deploy.StateCrashed},
		{"restarted, one healthy", appRecord{Current: "v1", Desired: 2}, 1, true, false, false, deploy.StateRunning},
		{"crashed while waking", appRecord{Current: "v1", Desired: 1}, 0, true, false, true, deploy.StateWaking},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := state(tc.rec, tc.healthy, tc.restarted, tc.deploying, tc.waking); got != tc.want {
				t.Errorf("state = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestReleaseNames(t *testing.T) {
	for _, s := range []string{"v", "v0", "3", "v1x", "V1", "v12345678901", ""} {
		if _, ok := deploy.ParseReleaseName(s); ok {
			t.Errorf("ParseReleaseName(%q) accepted", s)
		}
	}
	if v, ok := deploy.ParseReleaseName(deploy.ReleaseName(42)); !ok || v != 42 {
		t.Errorf("round trip of v42: %d %v", v, ok)
	}
}

func TestSavedSecondsCountsSleep(t *testing.T) {
	since := time.Now().Add(-10 * time.Second)
	r := appRecord{Desired: 3, Asleep: true, AsleepSince: &since}
	r.wake()
	if r.Asleep || r.SavedSeconds < 29 || r.SavedSeconds > 40 {
		t.Errorf("after 10 s asleep at 3 instances: asleep=%v saved=%.1f s, want about 30", r.Asleep, r.SavedSeconds)
	}
}

func TestPruneDeploysKeepsTheNewest(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 12; i++ {
		for _, app := range []string{"a", "b"} {
			if err := s.putDeploy(deploy.Rollout{ID: fmt.Sprintf("2026-%02d-%s", i, app), App: app}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.pruneDeploys("a", 5); err != nil {
		t.Fatal(err)
	}
	ds, _ := s.deploys("a")
	if len(ds) != 5 || ds[0].ID != "2026-11-a" || ds[4].ID != "2026-07-a" {
		t.Errorf("after pruning a to 5: %d records, newest %q, oldest %q", len(ds), ds[0].ID, ds[len(ds)-1].ID)
	}
	if ds, _ := s.deploys("b"); len(ds) != 12 {
		t.Errorf("pruning a touched b: %d records", len(ds))
	}
}
