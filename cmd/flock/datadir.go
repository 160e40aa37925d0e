package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// closeDataDir takes group and other permissions off every entry of the
// data dir but open (the local scheduler's folder). As root the local
// scheduler makes the data dir passable (o+x) so that apps, each under a
// uid of its own, reach their folders inside open; the store, the token,
// the slugs, the build cache and HAProxy's files must stay Flock's alone.
// The entries' contents need no change: a closed folder closes them.
func closeDataDir(dir, open string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	for _, e := range ents {
		if e.Name() == open || e.Type()&os.ModeSymlink != 0 {
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&0o700); err != nil {
				return fmt.Errorf("data dir: %w", err)
			}
		}
	}
	return nil
}
