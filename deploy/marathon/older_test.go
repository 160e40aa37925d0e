package marathon

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestOlderReleases: during a rolling upgrade the tasks of the previous
// configuration keep its release, and the release of tasks that are gone is
// forgotten rather than kept for ever.
func TestOlderReleases(t *testing.T) {
	s, err := New(Config{URLs: []string{"http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	app := func(release, version string, taskVersions ...string) mApp {
		a := mApp{ID: "/flock/web", Labels: map[string]string{managedLabel: "true", releaseLabel: release}, Version: version}
		a.VersionInfo.LastConfigChangeAt = version
		for _, v := range taskVersions {
			a.Tasks = append(a.Tasks, mTask{ID: "web." + v, Version: v, State: "TASK_RUNNING"})
		}
		return a
	}
	releases := func() map[string]string {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := map[string]string{}
		for _, in := range s.apps["web"].instances {
			out[in.ID] = in.Release
		}
		return out
	}
	s.store("web", app("v1", "t1", "t1"), 0)
	s.store("web", app("v2", "t2", "t1", "t2"), 0)
	if diff := cmp.Diff(map[string]string{"web.t1": "v1", "web.t2": "v2"}, releases()); diff != "" {
		t.Errorf("mid-upgrade releases (-want +got):\n%s", diff)
	}
	s.store("web", app("v2", "t2", "t2"), 0)
	s.store("web", app("v3", "t3", "t2", "t3"), 0)
	if diff := cmp.Diff(map[string]string{"web.t2": "v2", "web.t3": "v3"}, releases()); diff != "" {
		t.Errorf("second upgrade releases (-want +got):\n%s", diff)
	}
	s.mu.Lock()
	older := s.apps["web"].older
	s.mu.Unlock()
	if diff := cmp.Diff(map[string]string{"t2": "v2"}, older); diff != "" {
		t.Errorf("remembered releases (-want +got):\n%s", diff)
	}
}
