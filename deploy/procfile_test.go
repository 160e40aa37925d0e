package deploy

import (
	"strings"
	"testing"
)

// TestParseProcfile: the forms Heroku accepts, and a clear error naming
// the line for the rest.
func TestParseProcfile(t *testing.T) {
	got, err := ParseProcfile([]byte("# comment\n\nweb: node server.js\nrelease:  node migrate.js \nworker:node w.js\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"web": "node server.js", "release": "node migrate.js", "worker": "node w.js"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"web node server.js\n", "line 1"},
		{"web: a\nweb: b\n", "line 2: web is given twice"},
		{"web:\n", "line 1: web has no command"},
		{"we b: x\n", "line 1"},
	} {
		if _, err := ParseProcfile([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Procfile") {
			t.Errorf("ParseProcfile(%q) = %v, want an error naming %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParseProcfile: any bytes give a map of valid types and non-empty
// commands, or an error; never a panic.
func FuzzParseProcfile(f *testing.F) {
	for _, seed := range []string{"web: node s.js\n", "release: x\nworker: y\n", "# c\n\n", "web", ":", "web:\x00"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		procs, err := ParseProcfile(data)
		if err != nil {
			return
		}
		for name, cmd := range procs {
			if !procfileTypeRE.MatchString(name) || strings.TrimSpace(cmd) == "" || strings.ContainsRune(cmd, 0) {
				t.Fatalf("accepted %q: %q from %q", name, cmd, data)
			}
		}
	})
}
