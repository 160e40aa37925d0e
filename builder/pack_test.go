package builder

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPackHonoursIgnoreFiles(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		".gitignore": "# build output\nnode_modules/\n*.log\n!keep.log\n/build\ndocs/**/secret.txt\n" +
			"tmp/*\n!tmp/.keep\n\\#hash\n",
		".flockignore":            "big/\n",
		"server.js":               "x",
		"keep.log":                "kept by negation",
		"debug.log":               "x",
		"sub/debug.log":           "x",
		"node_modules/a/index.js": "x",
		"sub/node_modules/b.js":   "x",
		"build/out.js":            "x",
		"sub/build/out.js":        "not anchored: kept",
		"docs/a/b/secret.txt":     "x",
		"docs/readme.md":          "kept",
		"tmp/x":                   "x",
		"tmp/.keep":               "",
		"#hash":                   "x",
		"big/blob":                "x",
		"sub/.gitignore":          "local.txt\n",
		"sub/local.txt":           "x",
		"local.txt":               "kept: the rule is sub's",
		".git/HEAD":               "ref: refs/heads/main",
	})
	if err := os.Symlink("server.js", filepath.Join(src, "link.js")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Pack(src, &buf); err != nil {
		t.Fatalf("Pack: %v", err)
	}
	dst := t.TempDir()
	if err := Unpack(&buf, dst, 1<<20); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	want := []string{".flockignore", ".gitignore", "docs/readme.md", "keep.log", "link.js -> server.js",
		"local.txt", "server.js", "sub/.gitignore", "sub/build/out.js", "tmp/.keep"}
	if diff := cmp.Diff(want, files(t, dst)); diff != "" {
		t.Errorf("packed files (-want +got):\n%s", diff)
	}
}

func TestPackNotAFolder(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	writeTree(t, filepath.Dir(f), map[string]string{"file": "x"})
	if err := Pack(f, &bytes.Buffer{}); err == nil {
		t.Error("Pack of a file succeeded")
	}
	if err := Pack(filepath.Join(t.TempDir(), "missing"), &bytes.Buffer{}); err == nil {
		t.Error("Pack of a missing folder succeeded")
	}
}

func TestIgnorePatterns(t *testing.T) {
	tests := []struct {
		pattern, path string
		dir, want     bool
	}{
		{"*.log", "a.log", false, true},
		{"*.log", "x/y/a.log", false, true},
		{"*.log", "a.log.txt", false, false},
		{"/a.log", "x/a.log", false, false},
		{"/a.log", "a.log", false, true},
		{"build/", "build", false, false},
		{"build/", "x/build", true, true},
		{"a/*.js", "a/b.js", false, true},
		{"a/*.js", "a/c/b.js", false, false},
		{"a/**/b.js", "a/b.js", false, true},
		{"a/**/b.js", "a/x/y/b.js", false, true},
		{"**/cache", "x/y/cache", true, true},
		{"out/**", "out/x/y", false, true},
		{"out/**", "out", true, false},
		{"?.txt", "a.txt", false, true},
		{"?.txt", "ab.txt", false, false},
		{"[ab].c", "b.c", false, true},
		{"[!ab].c", "b.c", false, false},
		{"*", "anything/at/all", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.path, func(t *testing.T) {
			r, ok := parseIgnore("", tt.pattern)
			if !ok {
				t.Fatalf("pattern %q not parsed", tt.pattern)
			}
			if got := (ignoreRules{r}).ignored(tt.path, tt.dir); got != tt.want {
				t.Errorf("ignored(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}
