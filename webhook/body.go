package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Until its signature is checked a delivery is anyone's bytes, so reading it
// is bounded three ways: how many are read at once (a slot each), how much
// of each is held in memory (the rest goes to a temporary file, all of
// which share one budget) and how long the body may take to arrive.
const (
	// memPart is how much of one delivery is held in memory: a push of a
	// few commits fits, so most deliveries never touch the disk.
	memPart = 64 << 10
	// chunk is the read buffer of one delivery.
	chunk = 16 << 10
)

// errBodyTimeout: the body did not arrive within BodyTimeout.
var errBodyTimeout = errors.New("body timeout")

// unverified limits the deliveries being read before their signature is
// known.
type unverified struct {
	slots   chan struct{}
	spooled atomic.Int64 // bytes in temporary files now
	budget  int64        // most bytes spooled at once
}

func newUnverified(n int, budget int64) *unverified {
	return &unverified{slots: make(chan struct{}, n), budget: budget}
}

// acquire takes a slot without waiting: a sender that cannot have one is
// told to come back, which costs Flock nothing.
func (u *unverified) acquire() bool {
	select {
	case u.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (u *unverified) release() { <-u.slots }

// readSigned reads the body of r while it computes its HMAC-SHA256 with the
// secret, and returns the body only when it matches sig ("sha256=<hex>").
// Nothing of the body is parsed before that. At most memPart bytes stay in
// memory; the rest is spooled to a temporary file, removed before return.
func (g *GitHub) readSigned(w http.ResponseWriter, r *http.Request, sig string) ([]byte, error) {
	want, err := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
	if err != nil || len(want) != sha256.Size {
		return nil, errorf(http.StatusUnauthorized, "malformed X-Hub-Signature-256")
	}
	if r.ContentLength > g.cfg.MaxBody {
		return nil, errorf(http.StatusRequestEntityTooLarge, "payload larger than %d bytes", g.cfg.MaxBody)
	}
	if !g.gate.acquire() {
		return nil, errorf(http.StatusServiceUnavailable, "too many webhook deliveries being received at once (%d); redeliver later", cap(g.gate.slots))
	}
	held := true
	defer func() {
		if held {
			g.gate.release()
		}
	}()
	sp := &bodySpool{u: g.gate, dir: g.cfg.SpoolDir}
	defer sp.close()
	mac := hmac.New(sha256.New, []byte(g.cfg.Secret))
	if err := g.readBody(w, r, io.MultiWriter(mac, sp)); err != nil {
		return nil, err
	}
	// The delivery is no longer unknown bytes on the wire: let the next in.
	g.gate.release()
	held = false
	if !hmac.Equal(mac.Sum(nil), want) {
		return nil, errorf(http.StatusUnauthorized, "bad signature: X-Hub-Signature-256 does not match the payload and secret")
	}
	return sp.bytes()
}

// readBody copies the body of r to dst, within MaxBody and BodyTimeout.
// The deadline is the connection's read deadline, so a sender that stalls
// is cut off even in the middle of a read.
func (g *GitHub) readBody(w http.ResponseWriter, r *http.Request, dst io.Writer) error {
	deadline := time.Now().Add(g.cfg.BodyTimeout)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(deadline) // not every ResponseWriter can; the check below still holds
	// The timer breaks a read that blocks past the deadline even if a
	// wrapper of the body moved it; it must not touch the connection once
	// readBody has returned (it may carry the next request by then).
	var mu sync.Mutex
	reading := true
	stop := time.AfterFunc(g.cfg.BodyTimeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if reading {
			_ = rc.SetReadDeadline(time.Now())
		}
	})
	defer func() {
		stop.Stop()
		mu.Lock()
		reading = false
		mu.Unlock()
	}()
	buf := make([]byte, chunk)
	var n int64
	for {
		k, err := r.Body.Read(buf)
		n += int64(k)
		if n > g.cfg.MaxBody {
			return errorf(http.StatusRequestEntityTooLarge, "payload larger than %d bytes", g.cfg.MaxBody)
		}
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return werr
			}
		}
		if time.Now().After(deadline) {
			err = errBodyTimeout
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, errBodyTimeout) || errors.Is(err, os.ErrDeadlineExceeded):
			return errorf(http.StatusRequestTimeout, "payload not received within %s", g.cfg.BodyTimeout)
		default:
			return errorf(http.StatusBadRequest, "read payload: %v", err)
		}
	}
}

// bodySpool keeps the first memPart bytes written to it in memory and the rest
// in a temporary file whose size counts against the shared budget.
type bodySpool struct {
	u    *unverified
	dir  string
	mem  []byte
	file *os.File
	disk int64 // bytes in file, counted in u.spooled
}

func (s *bodySpool) Write(p []byte) (int, error) {
	if s.file == nil && len(s.mem)+len(p) <= memPart {
		s.mem = append(s.mem, p...)
		return len(p), nil
	}
	need := int64(len(p))
	if s.file == nil {
		need += int64(len(s.mem))
	}
	if s.u.spooled.Add(need) > s.u.budget {
		s.u.spooled.Add(-need)
		return 0, errorf(http.StatusServiceUnavailable,
			"too many large webhook deliveries being received at once (%d MiB); redeliver later", s.u.budget>>20)
	}
	s.disk += need
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "flock-delivery-")
		if err != nil {
			return 0, fmt.Errorf("spool delivery: %w", err)
		}
		s.file = f
		if _, err := f.Write(s.mem); err != nil {
			return 0, fmt.Errorf("spool delivery: %w", err)
		}
		s.mem = nil
	}
	if _, err := s.file.Write(p); err != nil {
		return 0, fmt.Errorf("spool delivery: %w", err)
	}
	return len(p), nil
}

// bytes returns everything written.
func (s *bodySpool) bytes() ([]byte, error) {
	if s.file == nil {
		return s.mem, nil
	}
	b, err := os.ReadFile(s.file.Name())
	if err != nil {
		return nil, fmt.Errorf("read spooled delivery: %w", err)
	}
	return b, nil
}

// close removes the file and returns its bytes to the budget.
func (s *bodySpool) close() {
	if s.file != nil {
		s.file.Close()
		os.Remove(s.file.Name())
		s.u.spooled.Add(-s.disk)
		s.file = nil
	}
}
