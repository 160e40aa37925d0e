package builder

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// maxEntries bounds the number of entries of an upload: enough for a big
// node_modules, not enough to run the disk out of inodes.
const maxEntries = 200000

// Unpack extracts the .tar.gz read from r into dir, which it creates if
// needed. It is built for uploads from strangers: it rejects entries whose
// path is absolute or leaves dir, symbolic links that point outside dir,
// entries that pass through a symbolic link, hard links, devices and
// fifos, and archives whose files add up to more than maxBytes (no limit
// when maxBytes <= 0). The error names the entry and the cause; what was
// extracted before it stays in dir for the caller to remove.
func Unpack(r io.Reader, dir string, maxBytes int64) error {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	switch {
	case len(magic) == 0 && (err == io.EOF || err == nil):
		return errors.New("unpack: the archive is empty")
	case len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b:
		return errors.New("unpack: not a gzip archive (expected a .tar.gz)")
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return fmt.Errorf("unpack: not a gzip archive: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer root.Close()
	u := &unpacker{root: root, max: maxBytes, dirs: map[string]bool{".": true}}
	tr := tar.NewReader(zr)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpack: not a valid tar.gz archive: %w", err)
		}
		if n >= maxEntries {
			return fmt.Errorf("unpack: the archive has more than %d entries", maxEntries)
		}
		if err := u.entry(hdr, tr); err != nil {
			return fmt.Errorf("unpack: entry %q: %w", hdr.Name, err)
		}
	}
}

// unpacker extracts entries below root.
type unpacker struct {
	root  *os.Root
	max   int64
	total int64
	dirs  map[string]bool // folders known to be real folders, not links
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		return nil // the root folder itself
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.mkdirs(name)
	case tar.TypeReg, tar.TypeRegA:
		if err := u.mkdirs(path.Dir(name)); err != nil {
			return err
		}
		u.total += hdr.Size
		if u.max > 0 && u.total > u.max {
			return fmt.Errorf("the archive's files add up to more than %d bytes", u.max)
		}
		f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fs.FileMode(hdr.Mode).Perm()|0o600)
		if err != nil {
			return err
		}
		if _, err := io.CopyN(f, r, hdr.Size); err != nil {
			f.Close()
			return fmt.Errorf("truncated archive: %w", err)
		}
		return f.Close()
	case tar.TypeSymlink:
		if err := u.mkdirs(path.Dir(name)); err != nil {
			return err
		}
		t := hdr.Linkname
		if t == "" || strings.ContainsRune(t, 0) || path.IsAbs(t) || climbsLate(t) || escapes(path.Join(path.Dir(name), t)) {
			return fmt.Errorf("symbolic link to %q points outside the folder", t)
		}
		return u.root.Symlink(t, name)
	case tar.TypeLink:
		return errors.New("hard links are not allowed")
	case tar.TypeChar, tar.TypeBlock:
		return errors.New("devices are not allowed")
	case tar.TypeFifo:
		return errors.New("fifos are not allowed")
	case tar.TypeXGlobalHeader:
		return nil
	}
	return fmt.Errorf("entries of type %q are not allowed", hdr.Typeflag)
}

// mkdirs makes the folder name and its parents, refusing to go through a
// symbolic link: a link checked to point inside could otherwise carry a
// later entry's own link outside.
func (u *unpacker) mkdirs(name string) error {
	if u.dirs[name] {
		return nil
	}
	if parent := path.Dir(name); parent != name {
		if err := u.mkdirs(parent); err != nil {
			return err
		}
	}
	fi, err := u.root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := u.root.Mkdir(name, 0o755); err != nil {
			return err
		}
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("path goes through the symbolic link %q", name)
	case !fi.IsDir():
		return fmt.Errorf("%q is a file, not a folder", name)
	}
	u.dirs[name] = true
	return nil
}

// cleanName returns the entry's path relative to the target folder, or
// an error when it is absolute or leaves the folder.
func cleanName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", errors.New("empty or invalid path")
	}
	if path.IsAbs(name) {
		return "", errors.New("absolute paths are not allowed")
	}
	clean := path.Clean(name)
	if escapes(clean) {
		return "", errors.New("path escapes the target folder")
	}
	return clean, nil
}

// escapes reports whether a cleaned relative path leaves its folder.
func escapes(p string) bool {
	p = path.Clean(p)
	return p == ".." || strings.HasPrefix(p, "../")
}

// climbsLate reports whether a link target has a ".." after a name
// ("b/../.."): through a link b, that climbs from wherever b points, which
// a check on the text alone cannot follow. Leading ".."s climb from the
// link's own folder, a real folder, and are checked by escapes.
func climbsLate(target string) bool {
	named := false
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "..":
			if named {
				return true
			}
		case ".", "":
		default:
			named = true
		}
	}
	return false
}
