package deploy

import (
	"bytes"
	"context"
	"io"
	"sync"
)

// maxLog caps what a deploy record keeps of its log.
const maxLog = 1 << 20

// liveLog is the log of a deploy in progress: many readers can follow it
// while the pipeline writes it.
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
	}
	close(l.notify)
	l.notify = make(chan struct{})
	return len(p), nil
}

// Close marks the log complete and wakes every follower.
func (l *liveLog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	close(l.notify)
	l.notify = make(chan struct{})
}

func (l *liveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Follow copies the log to w from the start until it is closed.
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

// teeWriter passes writes to every writer and ignores the errors of all
// but the first: a client that hung up must not stop a deploy.
type teeWriter struct {
	main   io.Writer
	others []io.Writer
}

func (t teeWriter) Write(p []byte) (int, error) {
	for _, w := range t.others {
		if w != nil {
			w.Write(p) //nolint:errcheck // best effort, see type doc
			if f, ok := w.(interface{ Flush() }); ok {
				f.Flush()
			}
		}
	}
	return t.main.Write(p)
}
