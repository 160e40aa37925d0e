package builder

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strings"
)

// Handler serves the artifact store: GET (or HEAD) /artifacts/<app>/<release>.tar.gz
// answers the slug, with Range support so a scheduler can resume a
// download. Mounted without the prefix (http.StripPrefix), it also serves
// /<app>/<release>.tar.gz. Names that are not a valid app and release
// answer 404, so no request reaches a path outside the store.
func (b *Builder) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if len(parts) == 3 && parts[0] == "artifacts" {
			parts = parts[1:]
		}
		if len(parts) != 2 || !strings.HasSuffix(parts[1], ".tar.gz") {
			httpError(w, http.StatusNotFound, "no such artifact")
			return
		}
		p, err := b.Path(parts[0], strings.TrimSuffix(parts[1], ".tar.gz"))
		if err != nil {
			httpError(w, http.StatusNotFound, "no such artifact")
			return
		}
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			httpError(w, http.StatusNotFound, "no such artifact")
			return
		}
		if err != nil {
			httpError(w, http.StatusInternalServerError, "cannot read the artifact")
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			httpError(w, http.StatusNotFound, "no such artifact")
			return
		}
		w.Header().Set("Content-Type", "application/gzip")
		// A release's slug never changes, so caches may keep it.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		http.ServeContent(w, r, parts[1], fi.ModTime(), f)
	})
}

// httpError answers the API's error format, {"error": "..."}.
func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
