// Package static serves a static site: the folder of an app that is only
// files (an index.html and no start command). It is what `flock static`
// runs as such an app's instance, so a static site needs no runtime on the
// machine. It serves files by name with their content type, index.html
// for a folder, and nothing else: no directory listings, no dotfiles, none
// of the files Flock reads to build an app (Procfile, flock.json,
// package.json …), and nothing outside the folder, whether reached by
// "..", an encoded "..", or a symbolic link.
package static

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// buildFiles are the names, at any depth and in any case, that describe
// how an app is built or run rather than what its site shows. They may
// hold the descriptor's env and are never served.
var buildFiles = map[string]bool{
	"procfile": true, "flock.json": true,
	"package.json": true, "package-lock.json": true, "npm-shrinkwrap.json": true,
	"yarn.lock": true, "pnpm-lock.yaml": true, "node_modules": true,
	"requirements.txt": true, "go.mod": true, "go.sum": true,
}

// hidden reports whether the name of one path element must not be
// served: a dotfile or dot-folder (.git, .env, .flockignore) other than
// .well-known, whose files (security.txt, ACME challenges) are meant to be
// public, or a build file.
func hidden(elem string) bool {
	if strings.HasPrefix(elem, ".") {
		return elem != ".well-known"
	}
	return buildFiles[strings.ToLower(elem)]
}

// types are the content types of the files sites are made of. They are
// fixed here rather than read from the machine's /etc/mime.types, so that
// a site is served alike everywhere; other extensions fall back to Go's
// mime table, then to sniffing the content.
var types = map[string]string{
	".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
	".json": "application/json", ".map": "application/json",
	".webmanifest": "application/manifest+json",
	".txt":         "text/plain; charset=utf-8", ".md": "text/markdown; charset=utf-8",
	".csv": "text/csv; charset=utf-8", ".xml": "application/xml",
	".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
	".gif": "image/gif", ".webp": "image/webp", ".avif": "image/avif", ".ico": "image/x-icon",
	".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
	".wasm": "application/wasm", ".pdf": "application/pdf",
	".mp4": "video/mp4", ".webm": "video/webm", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
}

// contentType is the Content-Type of a file called name, "" to sniff it.
func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := types[ext]; ok {
		return t
	}
	return mime.TypeByExtension(ext)
}

// cacheControl lets browsers and proxies keep a copy but ask before each
// use (a 304 when the ETag still matches), so a new release is seen at
// once, even for assets whose names do not change between releases.
const cacheControl = "public, max-age=0, must-revalidate"

// Site serves one folder. It is safe for concurrent use.
type Site struct {
	root   *os.Root
	fsys   fs.FS
	logger *slog.Logger
}

// New opens dir as a site. Every later lookup stays within dir: a
// symbolic link that leads out of it is not followed.
func New(dir string, logger *slog.Logger) (*Site, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("static site: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Site{root: root, fsys: root.FS(), logger: logger}, nil
}

// Close releases the site's folder.
func (s *Site) Close() error { return s.root.Close() }

// ServeHTTP serves GET and HEAD requests for the site's files.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, isDir, ok := s.resolve(r.URL.Path)
	if !ok {
		s.notFound(w, r)
		return
	}
	if isDir {
		if !strings.HasSuffix(r.URL.Path, "/") {
			// Relative, as http.FileServer does: an absolute "//host/"
			// would be an open redirect.
			target := path.Base(r.URL.Path) + "/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			w.Header().Set("Location", target)
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		name = path.Join(name, "index.html")
	}
	if !s.serveFile(w, r, name, http.StatusOK) {
		s.notFound(w, r)
	}
}

// resolve maps a request path to a name in the site: ok is false for a
// path that names something hidden, leaves the folder or is not clean.
// r.URL.Path is already decoded, so "%2e%2e" arrives here as "..".
func (s *Site) resolve(urlPath string) (name string, isDir, ok bool) {
	name, found := strings.CutPrefix(urlPath, "/")
	if !found || strings.ContainsRune(name, 0) {
		return "", false, false
	}
	if name == "" {
		return ".", true, true
	}
	name = strings.TrimSuffix(name, "/")
	// ValidPath refuses "..", ".", empty elements and leading slashes.
	if !fs.ValidPath(name) {
		return "", false, false
	}
	for _, elem := range strings.Split(name, "/") {
		if hidden(elem) {
			return "", false, false
		}
	}
	fi, err := fs.Stat(s.fsys, name)
	if err != nil {
		return "", false, false
	}
	if fi.IsDir() {
		return name, true, true
	}
	// A file asked for as a folder ("/style.css/") is not found.
	return name, false, fi.Mode().IsRegular() && !strings.HasSuffix(urlPath, "/")
}

// serveFile writes the regular file name with status; false when it is
// missing or not a regular file, and nothing was written.
func (s *Site) serveFile(w http.ResponseWriter, r *http.Request, name string, status int) bool {
	f, err := s.fsys.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		return false
	}
	h := w.Header()
	if t := contentType(name); t != "" {
		h.Set("Content-Type", t)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", cacheControl)
	if status != http.StatusOK {
		// ServeContent answers 200 (or 304, 206); a 404 page is sent whole.
		h.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = io.Copy(w, rs)
		}
		return true
	}
	h.Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.ModTime().UnixNano(), fi.Size()))
	http.ServeContent(w, r, name, fi.ModTime(), rs)
	return true
}

// notFound answers 404 with the site's own 404.html when it has one, as
// GitHub Pages and Netlify do.
func (s *Site) notFound(w http.ResponseWriter, r *http.Request) {
	if s.serveFile(w, r, "404.html", http.StatusNotFound) {
		return
	}
	http.Error(w, "404 page not found", http.StatusNotFound)
}

// shutdownGrace is how long requests in flight may take to finish after
// SIGTERM; the scheduler's own grace before SIGKILL is longer.
const shutdownGrace = 5 * time.Second

// Run serves the site on addr until ctx ends, then lets requests in flight
// finish.
func (s *Site) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("static site: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (s *Site) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	s.logger.Info("serving static site", "addr", ln.Addr().String())
	select {
	case err := <-done:
		return fmt.Errorf("static site: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("static site: shutdown: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("static site: %w", err)
	}
	return nil
}
