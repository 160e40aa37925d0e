package webhook

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxEntries bounds the entries of an uploaded tree, against tar bombs made
// of empty files.
const maxEntries = 200_000

// extractTar unpacks the tar stream r into dir, which must exist. Only
// regular files, folders and symbolic links that stay inside dir are
// allowed; "..", absolute names, hard links, devices and links pointing
// out are refused, and the files may total at most limit bytes. All writes
// go through an os.Root, so even a crafted stream cannot write outside dir.
func extractTar(r io.Reader, dir string, limit int64) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	defer root.Close()
	var links []string
	var total int64
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("extract: %w", err)
		}
		if n > maxEntries {
			return fmt.Errorf("extract: more than %d entries", maxEntries)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader { // git archive's commit id
			continue
		}
		name := path.Clean(hdr.Name)
		if name == "." && hdr.Typeflag == tar.TypeDir {
			continue
		}
		if !filepath.IsLocal(name) || strings.Contains(hdr.Name, `\`) {
			return fmt.Errorf("extract: refusing entry %q: names must stay inside the tree", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o755)
		case tar.TypeReg:
			total += hdr.Size
			if total > limit {
				return fmt.Errorf("extract: tree larger than %d bytes", limit)
			}
			err = extractFile(root, name, hdr, tr)
		case tar.TypeSymlink:
			if path.IsAbs(hdr.Linkname) || !filepath.IsLocal(path.Join(path.Dir(name), hdr.Linkname)) {
				return fmt.Errorf("extract: refusing link %q -> %q: it points outside the tree", hdr.Name, hdr.Linkname)
			}
			if err = mkParent(root, name); err == nil {
				err = root.Symlink(hdr.Linkname, name)
			}
			links = append(links, name)
		default:
			return fmt.Errorf("extract: refusing entry %q: type %q is not a file, folder or link", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", name, err)
		}
	}
	// A link that looks local by name can still leave the tree through
	// another link ("a" -> "..", "b" -> "a/x/../.."); resolve every link
	// through the tree as it finally is.
	for _, l := range links {
		t, err := root.Readlink(l)
		if err != nil {
			return fmt.Errorf("extract %s: %w", l, err)
		}
		if _, err := resolve(root, path.Dir(l)+"/"+t, 0); err != nil {
			return fmt.Errorf("extract: refusing link %q -> %q: %w", l, t, err)
		}
	}
	return nil
}

func mkParent(root *os.Root, name string) error {
	if d := path.Dir(name); d != "." {
		return root.MkdirAll(d, 0o755)
	}
	return nil
}

func extractFile(root *os.Root, name string, hdr *tar.Header, r io.Reader) error {
	if err := mkParent(root, name); err != nil {
		return err
	}
	mode := fs.FileMode(0o644)
	if hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, r, hdr.Size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// errEscapes says a link leads out of the tree.
var errEscapes = errors.New("it leads outside the tree")

// resolve follows p (slash-separated, relative to the root) component by
// component, through links, and returns where it lands; it fails when the
// walk would climb above the root. Missing components are taken as folders.
func resolve(root *os.Root, p string, depth int) ([]string, error) {
	if depth > 40 {
		return nil, errors.New("too many levels of links")
	}
	var out []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(out) == 0 {
				return nil, errEscapes
			}
			out = out[:len(out)-1]
			continue
		}
		cur := strings.Join(append(out, c), "/")
		fi, err := root.Lstat(cur)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			out = append(out, c)
			continue
		}
		t, err := root.Readlink(cur)
		if err != nil {
			return nil, err
		}
		if path.IsAbs(t) {
			return nil, errEscapes
		}
		if out, err = resolve(root, strings.Join(out, "/")+"/"+t, depth+1); err != nil {
			return nil, err
		}
	}
	return out, nil
}
