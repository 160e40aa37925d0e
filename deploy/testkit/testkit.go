// Package testkit holds the helpers every package's tests share: polling
// for a condition, free ports, and the real binaries a test needs (skipped
// when missing, failed instead when CI says they must be there). Only
// tests import it; it imports nothing of Flock.
package testkit

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// maxPoll is the longest pause between two checks of WaitFor's condition:
// short enough that a test hears of a change within a few milliseconds,
// long enough that a condition making an HTTP request does not hog a core.
const maxPoll = 10 * time.Millisecond

// WaitFor checks cond until it holds, pausing 1 ms at first and doubling
// up to 10 ms, and fails the test naming what it waited for once timeout
// passes. It is the one way a test waits: never a fixed sleep.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for pause := time.Millisecond; ; pause = min(pause*2, maxPoll) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(pause)
	}
}

// Ports are handed out below Linux's ephemeral range (32768–60999), so a
// client connection's source port cannot take one between FreePort and
// the bind of the server that wanted it. Each test binary starts at an
// offset of its own so that packages tested in parallel rarely collide;
// a lock file per port (portlock.go) and the bind check catch the rest.
const (
	firstPort = 20000
	lastPort  = 31999
)

var ports = struct {
	sync.Mutex
	next int
}{next: firstPort + os.Getpid()%5000*2}

// FreePort returns a port on 127.0.0.1 that is free now, that no other
// call of this test binary returns again before 12,000 more calls, and
// that no other test binary on the machine returns while this one runs.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ports.Lock()
	defer ports.Unlock()
	for range lastPort - firstPort + 1 {
		p := ports.next
		ports.next++
		if ports.next > lastPort {
			ports.next = firstPort
		}
		claimed, release := claimPort(p)
		if !claimed {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			ln.Close()
			return p
		}
		release()
	}
	tb.Fatal("testkit: no free port between 20000 and 31999 on 127.0.0.1")
	return 0
}

// FreeAddr returns "127.0.0.1:<FreePort>".
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(tb))
}

// Buffer is a bytes.Buffer that one goroutine may write (a deploy log, a
// process's output) while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
