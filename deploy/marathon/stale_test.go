package marathon

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// TestReadBeforeRemoveIsNotStored: a refresh (an event's, a poll's) that
// read the app from Marathon before a Remove deleted it, and answers after,
// does not bring the removed app back into the cache. Seen as a flake of
// the conformance suite's Remove case: Instances listed the deleted
// instances right after Remove returned.
func TestReadBeforeRemoveIsNotStored(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	target, _ := url.Parse(f.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	var hold atomic.Bool
	read, release := make(chan struct{}), make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v2/apps/flock/hello/web" && hold.CompareAndSwap(true, false) {
			// Marathon has answered; the answer is on its way back slowly.
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			close(read)
			<-release
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	s := newSched(t, Config{URLs: []string{front.URL}})
	ctx := context.Background()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if ins, err := s.Instances(ctx, "hello"); err != nil || len(ins) != 1 {
		t.Fatalf("before Remove: %v %v, want one instance", ins, err)
	}

	hold.Store(true)
	refreshed := make(chan error, 1)
	go func() { refreshed <- s.refresh(ctx, "hello") }()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the refresh never read the app")
	}
	if err := s.Remove(ctx, "hello"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	close(release)
	if err := <-refreshed; err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if ins, err := s.Instances(ctx, "hello"); err != nil || len(ins) != 0 {
		t.Errorf("after Remove and a refresh that read before it: %v %v, want none", ins, err)
	}
}
