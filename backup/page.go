package backup

import (
	"fmt"
	"html"
	"net/http"
	"strconv"
)

// pageError is an answer the waker gives itself instead of the app's: a
// status, a short message and, for 503, when to try again.
type pageError struct {
	status     int
	msg        string
	retryAfter int // seconds; 0: no Retry-After header
}

func (e *pageError) Error() string { return e.msg }

// writePage maps a pageError to a short HTML page. coldStart, when set,
// is the X-Flock-Cold-Start value of a request that was held.
func writePage(rw http.ResponseWriter, e *pageError, coldStart string) {
	h := rw.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	if coldStart != "" {
		h.Set(HeaderColdStart, coldStart)
	}
	rw.WriteHeader(e.status)
	msg := html.EscapeString(e.msg)
	fmt.Fprintf(rw, "<!doctype html>\n<title>%d %s</title>\n<h1>%s</h1>\n<p>Served by Flock's waker.</p>\n",
		e.status, http.StatusText(e.status), msg)
}

var _ error = (*pageError)(nil)
