package marathon

import "testing"

// TestIDs: Marathon ids map to Flock's names and back, in both layouts;
// ids deeper in the group, or that no Flock name could make, are not
// Flock's.
func TestIDs(t *testing.T) {
	for _, group := range []string{"/flock", "/flock/", "/"} {
		s := newSched(t, Config{URLs: []string{"http://m:8080"}, Group: group})
		base := s.base()
		s.flat["old"] = true
		for _, c := range []struct {
			name, id string
			flat     bool
		}{
			{"hello", base + "/hello/web", false},
			{"hello--worker", base + "/hello/worker", false},
			{"old", base + "/old", true},
			{"old--clock", base + "/old--clock", true},
		} {
			if got := s.appID(c.name); got != c.id {
				t.Errorf("group %s: appID(%s) = %s, want %s", group, c.name, got, c.id)
			}
			name, flat, ok := s.appName(c.id)
			if !ok || name != c.name || flat != c.flat {
				t.Errorf("group %s: appName(%s) = %s, flat %v, ok %v; want %s, flat %v", group, c.id, name, flat, ok, c.name, c.flat)
			}
		}
		foreign := []string{base + "/a/b/c", base + "/a--b/web", base + "/A/web", base + "/a/"}
		if group != "/" {
			foreign = append(foreign, "/other/hello")
		}
		for _, id := range foreign {
			if name, _, ok := s.appName(id); ok {
				t.Errorf("group %s: appName(%s) = %s, want not Flock's", group, id, name)
			}
		}
	}
}

// FuzzAppName: any id Marathon sends (events, lists) that appName takes
// for Flock's maps back to that same id, in the layout appName said.
func FuzzAppName(f *testing.F) {
	for _, id := range []string{"/flock/hello/web", "/flock/hello/worker", "/flock/old", "/flock/old--clock", "/flock/a/b/c", "/flock//web", "/other/x"} {
		f.Add(id)
	}
	s, err := New(Config{URLs: []string{"http://m:8080"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id string) {
		name, flat, ok := s.appName(id)
		if !ok {
			return
		}
		s.mu.Lock()
		s.flat[parentApp(name)] = flat
		s.mu.Unlock()
		if back := s.appID(name); back != id {
			t.Errorf("appName(%q) = %q (flat %v), whose id is %q", id, name, flat, back)
		}
	})
}
