package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// lineWriter streams text/plain to the client, flushing at every newline so
// a build log shows up as it is written. The headers go out with the first
// write: until then a handler can still answer with a JSON error.
//
// A handler closes it before it returns (defer lw.close()): after that,
// writes are refused, not sent. Once a handler has returned, its
// ResponseWriter belongs to net/http again (and gin hands the Context to
// another request), so a late write would crash the process or reach
// another client.
type lineWriter struct {
	mu      sync.Mutex
	w       gin.ResponseWriter
	started bool
	closed  bool
}

// errStreamClosed is what a write after the handler returned gets.
var errStreamClosed = errors.New("the request has ended")

func newLineWriter(c *gin.Context) *lineWriter { return &lineWriter{w: c.Writer} }

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, errStreamClosed
	}
	l.start()
	n, err := l.w.Write(p)
	if bytes.IndexByte(p, '\n') >= 0 {
		l.w.Flush()
	}
	return n, err
}

func (l *lineWriter) start() {
	if l.started {
		return
	}
	l.started = true
	h := l.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	l.w.WriteHeader(http.StatusOK)
	l.w.Flush()
}

// close ends the stream for writers that still hold it; it waits for a
// write in progress.
func (l *lineWriter) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

// begin sends the headers now, for streams whose outcome is told by their
// last line rather than by the status.
func (l *lineWriter) begin() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.start()
	}
}

// hasStarted reports whether the status has gone out.
func (l *lineWriter) hasStarted() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started
}

// finish ends a stream that failed: as a JSON error while nothing was sent,
// else as a last "error: ..." line.
func (s *Server) finish(c *gin.Context, l *lineWriter, err error) {
	if err == nil || errors.Is(err, context.Canceled) || c.Request.Context().Err() != nil {
		return
	}
	if !l.hasStarted() {
		s.fail(c, err)
		return
	}
	fmt.Fprintf(l, "error: %s\n", oneLine(err.Error()))
}

// oneLine keeps a reason on the final line of a stream.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// events streams deploy.Events as Server-Sent Events, one JSON object per
// message; ?app= keeps one app's. A comment every 25 s keeps proxies from
// closing an idle stream.
func (s *Server) events(c *gin.Context) {
	only := c.Query("app")
	ch, cancel := s.reader.Subscribe()
	defer cancel()
	w := c.Writer
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	w.Flush()

	ping := time.NewTicker(25 * time.Second)
	defer ping.Stop()
	ctx, cancel := s.streamContext(c)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
			w.Flush()
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if only != "" && ev.App != only {
				continue
			}
			b, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return
			}
			w.Flush()
		}
	}
}
