package builder

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
)

// Pack writes the source tree in dir to w as a .tar.gz, the upload format
// of `flock deploy`. It leaves out .git and whatever the tree's .gitignore
// and .flockignore files (at the root and in sub-folders) exclude, so a
// local node_modules or build output is not uploaded.
func Pack(dir string, w io.Writer) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("pack: %s is not a folder", dir)
	}
	rules := ignoreRules(nil).load(dir, "", ".gitignore").load(dir, "", ".flockignore")
	// Rules of sub-folders are loaded as the walk enters them; the walk is
	// depth-first and lexical, so a folder's rules are loaded before its
	// entries are asked about.
	loaded := map[string]bool{"": true}
	skip := func(rel string, isDir bool) bool {
		parent := path.Dir(rel)
		if parent == "." {
			parent = ""
		}
		if !loaded[parent] {
			loaded[parent] = true
			rules = rules.load(dir, parent, ".gitignore").load(dir, parent, ".flockignore")
		}
		return rules.ignored(rel, isDir)
	}
	if err := writeTarGz(w, os.DirFS(dir), gzip.DefaultCompression, skip, -1); err != nil {
		return fmt.Errorf("pack %s: %w", dir, err)
	}
	return nil
}
