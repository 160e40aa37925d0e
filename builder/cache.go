package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// keepCached is how many node_modules trees the cache keeps; the least
// recently used go first.
const keepCached = 20

// nodeCacheKey is the sha256 of the lockfile, the node version (native
// modules built for one node do not load in another) and the variant:
// "full" (with devDependencies) or "prod" (pruned).
func nodeCacheKey(tree *os.Root, lockfile, nodeVersion, variant string) (string, error) {
	f, err := tree.Open(lockfile)
	if err != nil {
		return "", fmt.Errorf("read lockfile: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read lockfile: %w", err)
	}
	fmt.Fprintf(h, "\x00node %s\x00%s", nodeVersion, variant)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (b *Builder) nodeCacheDir() string { return filepath.Join(b.cache, "node_modules") }

// restoreNodeModules links the cached node_modules for key into tree and
// reports whether there was one. Hard links make a restore cost one
// syscall per file; the work tree is deleted after the slug is written, so
// the shared files are never changed.
func (b *Builder) restoreNodeModules(key, tree string) (bool, error) {
	entry := filepath.Join(b.nodeCacheDir(), key)
	src := filepath.Join(entry, "node_modules")
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	dst := filepath.Join(tree, "node_modules")
	if err := os.RemoveAll(dst); err != nil {
		return false, fmt.Errorf("restore node_modules: %w", err)
	}
	if err := linkTree(src, dst); err != nil {
		_ = os.RemoveAll(dst)
		return false, fmt.Errorf("restore node_modules: %w", err)
	}
	now := time.Now()
	_ = os.Chtimes(entry, now, now) // mark as recently used for pruning
	return true, nil
}

// storeNodeModules copies tree's node_modules into the cache under key:
// into a temporary folder first, renamed into place, so a half-written
// entry is never used. A tree without node_modules caches an empty one.
func (b *Builder) storeNodeModules(key, tree string) error {
	if err := os.MkdirAll(b.nodeCacheDir(), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(b.nodeCacheDir(), ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tree, "node_modules")
	dst := filepath.Join(tmp, "node_modules")
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		err = os.Mkdir(dst, 0o755)
		if err != nil {
			return err
		}
	} else if err := linkTree(src, dst); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(b.nodeCacheDir(), key)); err != nil {
		if exists(b.nodeCacheDir(), key) {
			return nil // a concurrent build stored the same key
		}
		return err
	}
	pruneNodeCache(b.nodeCacheDir())
	return nil
}

// pruneNodeCache removes all but the keepCached most recently used
// entries of the cache folder dir. It works through an os.Root opened on
// dir's parent, a folder the builds cannot change: in a box, dir is the
// uid's, and a link there must not lead Flock's RemoveAll elsewhere.
func pruneNodeCache(dir string) {
	r, err := os.OpenRoot(filepath.Dir(dir))
	if err != nil {
		return
	}
	defer r.Close()
	base := filepath.Base(dir)
	entries, err := fs.ReadDir(r.FS(), base)
	if err != nil {
		return
	}
	type used struct {
		name string
		at   time.Time
	}
	var list []used
	for _, e := range entries {
		if info, err := e.Info(); err == nil && e.IsDir() && e.Name()[0] != '.' {
			list = append(list, used{e.Name(), info.ModTime()})
		}
	}
	slices.SortFunc(list, func(a, b used) int { return b.at.Compare(a.at) })
	for _, u := range list[min(len(list), keepCached):] {
		_ = r.RemoveAll(base + "/" + u.name)
	}
}

// In a box (runas.go) the node_modules cache is the app's own,
// <cache>/uid/<uid>/node_modules, and the uid itself links trees in and
// out of it (cp -al): Flock's root never links or copies a file the build
// could have swapped, hard links never join two apps' trees, and one app's
// build cannot change another app's cached files. Changing its own cached
// files in place changes its own next builds only, as without a box.

func (x *box) nodeCacheDir() string { return filepath.Join(x.home, "node_modules") }

// restoreNodeModules links the app's cached node_modules for key into
// tree, as the uid, and reports whether there was one.
func (x *box) restoreNodeModules(ctx context.Context, lw *lineWriter, key, tree string) (bool, error) {
	entry := filepath.Join(x.nodeCacheDir(), key)
	if _, err := os.Lstat(filepath.Join(entry, "node_modules")); err != nil {
		return false, nil
	}
	err := run(ctx, lw, x, tree, nil, "sh", "-c",
		`rm -rf node_modules && cp -al "$1/node_modules" node_modules && touch -c "$1"`, "sh", entry)
	if err != nil {
		return false, fmt.Errorf("restore node_modules: %w", err)
	}
	return true, nil
}

// storeScript stores the tree's node_modules ("" when it has none) under
// $1/$2: linked into a temporary folder, renamed into place.
const storeScript = `set -e
mkdir -p "$1"
t=$(mktemp -d "$1/.tmp-XXXXXX")
if [ -d node_modules ]; then cp -al node_modules "$t/node_modules"; else mkdir "$t/node_modules"; fi
mv -T "$t" "$1/$2" 2>/dev/null || rm -rf "$t"`

// storeNodeModules caches tree's node_modules under key, as the uid.
func (x *box) storeNodeModules(ctx context.Context, lw *lineWriter, key, tree string) error {
	if err := run(ctx, lw, x, tree, nil, "sh", "-c", storeScript, "sh", x.nodeCacheDir(), key); err != nil {
		return err
	}
	pruneNodeCache(x.nodeCacheDir())
	return nil
}
