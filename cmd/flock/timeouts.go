package main

import (
	"io"
	"net/http"
	"time"
)

// Every HTTP listener of Flock bounds how long a client may take to send
// its request, and how long an idle connection is kept, so slow or silent
// clients cannot pile up connections. None bounds the answer: build logs,
// `logs --follow` and the event stream last as long as they need.
type timeouts struct {
	// ReadHeader bounds the request line and headers.
	ReadHeader time.Duration
	// Read bounds the whole request, headers and body, unless the body
	// keeps arriving at MinUploadRate (see pacedBody).
	Read time.Duration
	// Idle bounds a keep-alive connection waiting for its next request.
	Idle time.Duration
	// MinUploadRate is the slowest an upload (a git push, a `flock deploy`
	// tarball) may arrive once Read has passed, in bytes per second.
	MinUploadRate int64
}

// listenerTimeouts are the timeouts of every listener of Flock.
var listenerTimeouts = timeouts{ReadHeader: 10 * time.Second, Read: time.Minute, Idle: 2 * time.Minute, MinUploadRate: 32 << 10}

// harden sets srv's timeouts and wraps its handler in readDeadlines.
func harden(srv *http.Server) *http.Server { return listenerTimeouts.apply(srv) }

func (t timeouts) apply(srv *http.Server) *http.Server {
	srv.ReadHeaderTimeout = t.ReadHeader
	srv.ReadTimeout = t.Read
	srv.IdleTimeout = t.Idle
	srv.Handler = t.readDeadlines(srv.Handler)
	return srv
}

// readDeadlines paces the read deadline of requests with a body. With
// ReadTimeout alone a slow but steady upload (a large git push over a slow
// link) would be cut after Read; here the body may take Read plus the time
// it takes at MinUploadRate. Long answers need nothing: net/http lifts the
// read deadline once the request is read (it then watches for the client
// leaving), so a followed log or the event stream is never cut. A handler
// may still set a tighter deadline of its own (the webhook does).
func (t timeouts) readDeadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &pacedBody{ReadCloser: r.Body, t: t, rc: http.NewResponseController(w), start: time.Now()}
		}
		h.ServeHTTP(w, r)
	})
}

// pacedBody extends the read deadline as an upload arrives: the body may
// take Read, plus one second per MinUploadRate bytes received.
type pacedBody struct {
	io.ReadCloser
	t     timeouts
	rc    *http.ResponseController
	start time.Time
	n     int64
}

func (b *pacedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case err != nil:
		// As net/http does at the body's end: no deadline is left behind
		// for the read that watches for the client leaving.
		_ = b.rc.SetReadDeadline(time.Time{})
	case n > 0:
		_ = b.rc.SetReadDeadline(b.start.Add(b.t.Read + time.Duration(b.n)*time.Second/time.Duration(b.t.MinUploadRate)))
	}
	return n, err
}
