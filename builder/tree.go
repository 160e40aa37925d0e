package builder

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"
)

// copyTree copies the folder src to dst (which must not exist): folders,
// regular files and symbolic links (as links, never followed). .git is
// left out; other special files are skipped.
func copyTree(src, dst string) error {
	return walkTree(src, dst, func(from, to string, mode fs.FileMode) error {
		return copyFile(from, to, mode)
	})
}

// linkTree is copyTree with hard links instead of copies where the file
// system allows them.
func linkTree(src, dst string) error {
	return walkTree(src, dst, func(from, to string, mode fs.FileMode) error {
		err := os.Link(from, to)
		if errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EMLINK) {
			return copyFile(from, to, mode)
		}
		return err
	})
}

func walkTree(src, dst string, file func(from, to string, mode fs.FileMode) error) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir() && d.Name() == ".git" && rel != ".":
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
			info, err := d.Info()
			if err != nil {
				return err
			}
			return file(p, to, info.Mode().Perm())
		}
		return nil // sockets, fifos, devices: not part of a source tree
	})
}

func copyFile(from, to string, mode fs.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeSlug writes the tree as a .tar.gz to path atomically: a temporary
// file in the same folder, synced, then renamed over path. owner, unless
// -1, is the uid every regular file of the tree must belong to (runas.go).
func writeSlug(tree *os.Root, path string, owner int) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".slug-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = writeTarGz(tmp, tree.FS(), gzip.BestSpeed, nil, owner); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeTarGz writes the tree of fsys to w as a gzip-compressed tar.
// skip, when set, leaves out an entry (and, for a folder, everything in
// it); .git is always left out. owner, unless -1, is the uid every regular
// file must belong to.
func writeTarGz(w io.Writer, fsys fs.FS, level int, skip func(rel string, dir bool) bool, owner int) error {
	zw, err := gzip.NewWriterLevel(w, level)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	err = fs.WalkDir(fsys, ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil || rel == "." {
			return err
		}
		if (d.IsDir() && d.Name() == ".git") || (skip != nil && skip(rel, d.IsDir())) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return addEntry(tw, fsys, rel, d, owner)
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// addEntry writes one folder, regular file or symbolic link; other kinds
// of files are left out. A regular file's header comes from the file it
// opened, so its name and its content cannot part ways meanwhile.
func addEntry(tw *tar.Writer, fsys fs.FS, rel string, d fs.DirEntry, owner int) error {
	var (
		info fs.FileInfo
		f    fs.File
		err  error
	)
	link := ""
	switch {
	case d.Type().IsRegular():
		if f, err = fsys.Open(rel); err != nil {
			return err
		}
		defer f.Close()
		if info, err = f.Stat(); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s: changed while the slug was written", rel)
		}
		if sys, ok := info.Sys().(*syscall.Stat_t); owner >= 0 && (!ok || int(sys.Uid) != owner) {
			return fmt.Errorf("%s: not a file of the app's uid %d (a hard link to another user's file?); Flock refuses it", rel, owner)
		}
	case d.Type()&fs.ModeSymlink != 0:
		if link, err = fs.ReadLink(fsys, rel); err != nil {
			return err
		}
		if info, err = fs.Lstat(fsys, rel); err != nil {
			return err
		}
		// Unpack refuses such a link; say so now, naming the file, rather
		// than when a scheduler unpacks the slug or the server the upload.
		if path.IsAbs(link) || climbsLate(link) || escapes(path.Join(path.Dir(rel), link)) {
			return fmt.Errorf("%s: symbolic link to %q points outside the app folder, which Flock refuses", rel, link)
		}
	case d.IsDir():
		if info, err = fs.Lstat(fsys, rel); err != nil {
			return err
		}
	default:
		return nil
	}
	// Without Sys: the header's owner is cleared below, and looking up the
	// names of a uid no passwd entry names (an app's) costs a read of
	// /etc/passwd per file.
	hdr, err := tar.FileInfoHeader(noSys{info}, link)
	if err != nil {
		return err
	}
	hdr.Name = rel
	if d.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if f == nil {
		return nil
	}
	if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}

// noSys hides a FileInfo's Sys from tar.FileInfoHeader.
type noSys struct{ fs.FileInfo }

func (noSys) Sys() any { return nil }
