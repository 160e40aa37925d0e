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
const (
	// readHeaderTimeout bounds the request line and headers.
	readHeaderTimeout = 10 * time.Second
	// readTimeout bounds the whole request, headers and body, unless the
	// body keeps arriving at minUploadRate (see pacedBody).
	readTimeout = time.Minute
	// idleTimeout bounds a keep-alive connection waiting for its next request.
	idleTimeout = 2 * time.Minute
	// minUploadRate is the slowest an upload (a git push, a
	// `flock deploy` tarball) may arrive once readTimeout has passed, in
	// bytes per second.
	minUploadRate = 32 << 10
)

// harden sets srv's timeouts and wraps its handler in readDeadlines.
func harden(srv *http.Server) *http.Server {
	srv.ReadHeaderTimeout = readHeaderTimeout
	srv.ReadTimeout = readTimeout
	srv.IdleTimeout = idleTimeout
	srv.Handler = readDeadlines(srv.Handler)
	return srv
}

// readDeadlines moves the server's read deadline to fit each request.
// net/http keeps ReadTimeout's deadline on the connection while the handler
// runs and cancels the request's context when it passes, which would end a
// long answer (a followed log, Server-Sent Events) after readTimeout. So:
// a request without a body has nothing left to read and its deadline is
// lifted; a request with a body gets readTimeout plus the time the body
// takes at minUploadRate, and no deadline once it is read. A handler may
// still set a tighter deadline of its own (the webhook does).
func readDeadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Body == nil || r.Body == http.NoBody {
			_ = rc.SetReadDeadline(time.Time{})
		} else {
			r.Body = &pacedBody{ReadCloser: r.Body, rc: rc, start: time.Now(), set: time.Now().Add(readTimeout)}
		}
		h.ServeHTTP(w, r)
	})
}

// pacedBody extends the read deadline as an upload arrives: the body may
// take readTimeout, plus one second per minUploadRate bytes received.
type pacedBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	set   time.Time // the deadline last set
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
		d := b.start.Add(readTimeout + time.Duration(b.n)*time.Second/minUploadRate)
		if d.Sub(b.set) >= time.Second {
			b.set = d
			_ = b.rc.SetReadDeadline(d)
		}
	}
	return n, err
}
