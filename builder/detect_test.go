package builder

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRelocateScripts(t *testing.T) {
	bin := t.TempDir()
	writeTree(t, bin, map[string]string{
		"gunicorn": "#!/tmp/work/app/.venv/bin/python3\nimport sys\n",
		"activate": "# not a script with a shebang\n",
		"other":    "#!/bin/sh\necho hi\n",
	})
	r, err := os.OpenRoot(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := relocateScripts(r, "."); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"gunicorn": "#!/usr/bin/env python3\nimport sys\n",
		"activate": "# not a script with a shebang\n",
		"other":    "#!/bin/sh\necho hi\n",
	} {
		got, err := os.ReadFile(filepath.Join(bin, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"server.js": "server.js", "lib/a b.js": "'lib/a b.js'", "it's.js": `'it'\''s.js'`} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
