package marathon

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryFixtureIsUsed: each file of testdata/marathon is
// described in its SOURCES.md and read by a test of this package (by name,
// or through the events/*.json glob).
func TestEveryFixtureIsUsed(t *testing.T) {
	sources := string(fixture(t, "SOURCES.md"))
	var tests strings.Builder
	names, _ := filepath.Glob("*_test.go")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		tests.Write(b)
	}
	code := tests.String()
	err := filepath.WalkDir(fixtures, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "SOURCES.md" {
			return err
		}
		rel, _ := filepath.Rel(fixtures, p)
		if !strings.Contains(sources, d.Name()) {
			t.Errorf("%s is not described in SOURCES.md", rel)
		}
		used := strings.Contains(code, `"`+d.Name()+`"`) || strings.Contains(code, `"`+filepath.ToSlash(rel)+`"`) ||
			strings.Contains(code, `"original-flock/"+name`) && strings.HasPrefix(rel, "original-flock/") && strings.Contains(code, d.Name()) ||
			strings.HasPrefix(rel, "events/") && strings.Contains(code, `filepath.Join(fixtures, "events", "*.json")`)
		if !used {
			t.Errorf("no test reads %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
