package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// shortTimeouts are timeouts small enough to test in seconds. Read is
// the one a steady upload must beat from its first byte on: at 1 s, a
// client that a busy machine holds up for a moment is not cut (at 300 ms
// the first piece of the steady upload had 200 ms to spare).
var shortTimeouts = timeouts{ReadHeader: 200 * time.Millisecond, Read: time.Second, Idle: 300 * time.Millisecond, MinUploadRate: 64 << 10}

// serveHardened serves h the way Flock serves its listeners, with short timeouts.
func serveHardened(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := shortTimeouts.apply(&http.Server{Handler: h})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// trickle is a body that sends size bytes in pieces of piece, one every every.
type trickle struct {
	left, piece int
	every       time.Duration
	stallAfter  int // bytes after which it stops sending for a long time; 0: never
	sent        int
}

func (b *trickle) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if b.stallAfter > 0 && b.sent >= b.stallAfter {
		time.Sleep(3 * time.Second)
		return 0, io.ErrUnexpectedEOF
	}
	time.Sleep(b.every)
	n := min(b.piece, b.left, len(p))
	b.left -= n
	b.sent += n
	return n, nil
}

// TestListenerTimeouts: Flock's listeners cut slow headers, stalled uploads
// and idle connections, but not a long answer nor an upload that keeps
// arriving, however long either takes.
func TestListenerTimeouts(t *testing.T) {
	addr := serveHardened(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream": // like logs?follow=1 or the event stream
			for i := range 20 {
				if r.Context().Err() != nil {
					return
				}
				fmt.Fprintf(w, "line %d\n", i)
				http.NewResponseController(w).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		case "/upload": // like a git push or flock deploy
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusRequestTimeout)
				return
			}
			fmt.Fprintf(w, "%d bytes", n)
		}
	}))
	base := "http://" + addr

	t.Run("long answer is not cut", func(t *testing.T) {
		resp, err := http.Get(base + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if n := strings.Count(string(b), "line"); n != 20 {
			t.Errorf("got %d of 20 lines over 2 s with a Read timeout of %v:\n%s", n, shortTimeouts.Read, b)
		}
	})
	t.Run("upload that keeps arriving is not cut", func(t *testing.T) {
		// 160 KiB/s for 2.4 s: more than twice Read, above MinUploadRate.
		body := &trickle{left: 384 << 10, piece: 16 << 10, every: 100 * time.Millisecond}
		resp, err := http.Post(base+"/upload", "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("%d bytes", 384<<10) {
			t.Errorf("got %d %s", resp.StatusCode, b)
		}
	})
	t.Run("stalled upload is cut", func(t *testing.T) {
		body := &trickle{left: 1 << 20, piece: 1 << 10, every: 10 * time.Millisecond, stallAfter: 4 << 10}
		start := time.Now()
		resp, err := http.Post(base+"/upload", "application/octet-stream", body)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("got %d %s, want 408 or a cut connection", resp.StatusCode, b)
			}
		}
		// Cut after Read and 4 KiB's worth of MinUploadRate (~1.1 s);
		// uncut, the client would end it itself after its 3 s stall.
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Errorf("a stalled upload was waited for %v", d)
		}
	})
	t.Run("slow headers are cut", func(t *testing.T) {
		closedWithin(t, addr, "GET /stream HTTP/1.1\r\nHost: x\r\n", false, 2*time.Second)
	})
	t.Run("idle connection is closed", func(t *testing.T) {
		closedWithin(t, addr, "GET /none HTTP/1.1\r\nHost: x\r\n\r\n", true, 2*time.Second)
	})
}

// closedWithin writes send on a new connection to addr, reads the answer
// (when answered says there is one), and checks the server closes the
// connection within d.
func closedWithin(t *testing.T, addr, send string, answered bool, d time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, send); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(d))
	br := bufio.NewReader(c)
	if answered {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection not closed by the server within %v: %v", d, err)
	}
}
