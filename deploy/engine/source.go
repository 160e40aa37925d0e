package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// snapshot gives a deploy a source tree of its own. Callers remove their
// folder as soon as Deploy returns, and Deploy returns as soon as its
// caller leaves (a client hung up) while the deploy goes on, possibly
// still queued: without its own tree the build would find the source
// gone. Files are hard-linked where the file system allows (no bytes are
// copied; the builder never changes its source), else copied. Git's own
// folder is left out, as the builder leaves it out of the slug.
func snapshot(src string) (dir string, err error) {
	dir, err = os.MkdirTemp("", "flock-source-")
	if err != nil {
		return "", fmt.Errorf("snapshot %s: %w", src, err)
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		to := filepath.Join(dir, rel)
		switch {
		case d.IsDir() && d.Name() == ".git":
			return filepath.SkipDir
		case d.IsDir():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return os.Mkdir(to, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case d.Type().IsRegular():
			return linkOrCopy(p, to)
		}
		return nil // sockets, fifos, devices: not part of a source tree
	})
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("snapshot %s: %w", src, err)
	}
	return dir, nil
}

func linkOrCopy(from, to string) error {
	err := os.Link(from, to)
	if !errors.Is(err, syscall.EXDEV) && !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EMLINK) {
		return err
	}
	info, err := os.Stat(from)
	if err != nil {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
