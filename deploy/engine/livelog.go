package engine

import (
	"bytes"
	"context"
	"io"
	"sync"
)

// maxLog caps what a deploy record keeps of its log; truncated then says
// so, where the log stops.
const (
	maxLog    = 1 << 20
	truncated = "\n-----> The log is longer than 1 MiB; the rest is not kept (the deploy goes on)\n"
)

// liveLog is the log of a deploy in progress: the job writes it, and any
// number of followers read it, each from its own goroutine and at its own
// pace. Writes never block on a follower and never fail, so a client that
// is slow or gone cannot stall or break a deploy; a follower that fails to
// write just stops following.
type liveLog struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	done   bool
	notify chan struct{} // closed and replaced on every write
}

func newLiveLog() *liveLog { return &liveLog{notify: make(chan struct{})} }

func (l *liveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < maxLog {
		l.buf.Write(p)
		if l.buf.Len() >= maxLog {
			l.buf.WriteString(truncated)
		}
	}
	close(l.notify)
	l.notify = make(chan struct{})
	return len(p), nil
}

// Close marks the log complete and wakes every follower. Closing twice
// is harmless; writes after Close are still kept (a scheduler may log a
// last line late), but followers no longer wait for them.
func (l *liveLog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	l.done = true
	close(l.notify)
	l.notify = make(chan struct{})
}

func (l *liveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Follow copies the log to w from the start until it is closed, ctx ends
// or a write to w fails. w is written only from the calling goroutine, and
// not at all once Follow has returned.
func (l *liveLog) Follow(ctx context.Context, w io.Writer) error {
	off := 0
	for {
		l.mu.Lock()
		chunk := append([]byte(nil), l.buf.Bytes()[off:]...)
		done, notify := l.done, l.notify
		l.mu.Unlock()
		if len(chunk) > 0 {
			off += len(chunk)
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			if f, ok := w.(interface{ Flush() }); ok {
				f.Flush()
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-notify:
		}
	}
}
