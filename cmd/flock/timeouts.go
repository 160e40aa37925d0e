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

// readDeadlines moves the server's read deadline to fit each request.
// net/http keeps ReadTimeout's deadline on the connection while the handler
// runs and cancels the request's context when it passes, which would end a
// long answer (a followed log, Server-Sent Events) after Read. So:
// a request without a body has nothing left to read and its deadline is
// lifted; a request with a body gets Read plus the time the body
// takes at MinUploadRate, and no deadline once it is read. A handler may
// still set a tighter deadline of its own (the webhook does).
func (t timeouts) readDeadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Body == nil || r.Body == http.NoBody {
			_ = rc.SetReadDeadline(time.Time{})
		} else {
			r.Body = &pacedBody{ReadCloser: r.Body, t: t, rc: rc, start: time.Now()}
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
	done  bool
}

func (b *pacedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case b.done:
	case err != nil:
		// Read (io.EOF) or failed: nothing more is waited for.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case n > 0:
		_ = b.rc.SetReadDeadline(b.start.Add(b.t.Read + time.Duration(b.n)*time.Second/time.Duration(b.t.MinUploadRate)))
	}
	return n, err
}
