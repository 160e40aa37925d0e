package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// closeDataDir keeps Flock's files Flock's own: from here on every file
// and folder Flock creates is 0600/0700 (umask 077) unless its creator
// opens it on purpose, and the data dir and its entries (but open, the
// local scheduler's folder, which opens what apps need) lose what a
// previous version or the user left open to group and others.
//
// This matters because apps run on this machine: as root the local
// scheduler gives each app a uid of its own and makes the data dir
// passable (o+x) so apps reach their folders under open; the store, the
// token, the slugs, the build cache and HAProxy's sockets must stay closed
// to them.
func closeDataDir(dir, open string) error {
	syscall.Umask(0o077)
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
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
