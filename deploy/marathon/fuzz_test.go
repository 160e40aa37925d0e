package marathon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// FuzzParseEvent: any event-bus data, however broken, is parsed or
// ignored, never a panic.
func FuzzParseEvent(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "events", "*.json"))
	for _, file := range files {
		f.Add(fixture(f, "events/"+filepath.Base(file)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if tr, ok := parseEvent(data); ok && !tr.all && len(tr.ids) == 0 && tr.deployment == "" {
			t.Errorf("understood %q but triggers nothing", data)
		}
	})
}

// FuzzReadSSE: the stream reader survives any bytes, never hands over
// more than maxEvent, and reads the same events however the bytes arrive
// (here with a small maxEvent, so that the oversize path runs too).
func FuzzReadSSE(f *testing.F) {
	f.Add(fixture(f, "v2_events_stream_sample.txt"))
	f.Add([]byte("data: {}\n\ndata:\n:comment\nevent: x\n"))
	f.Add([]byte("event: big\r\ndata: " + strings.Repeat("z", 300) + "\r\n\r\ndata: after\n\n"))
	defer func(m int) { maxEvent = m }(maxEvent)
	maxEvent = 100
	f.Fuzz(func(t *testing.T, b []byte) {
		read := func(r io.Reader) []string {
			var got []string
			if err := readSSE(r, func(name string, data []byte) {
				if len(data) > maxEvent {
					t.Errorf("handed over %d bytes, limit %d", len(data), maxEvent)
				}
				got = append(got, fmt.Sprintf("%s|%q|%v", name, data, data == nil))
			}); err != nil {
				t.Errorf("readSSE: %v", err)
			}
			return got
		}
		whole, bytewise := read(bytes.NewReader(b)), read(iotest.OneByteReader(bytes.NewReader(b)))
		if !slices.Equal(whole, bytewise) {
			t.Errorf("whole %v, byte by byte %v", whole, bytewise)
		}
	})
}

// FuzzDecodeApps: a list Marathon sends never panics the decoder.
func FuzzDecodeApps(f *testing.F) {
	f.Add(fixture(f, "v2_apps_embed_tasks_response_marathon14_healthchecks.json"))
	f.Add(fixture(f, "v2_apps_embed_tasks_response_marathon15_networks.json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		apps, err := decodeApps(b)
		if err != nil {
			return
		}
		for _, a := range apps {
			a.instances(nil)
			a.newHealthy()
		}
	})
}

// BenchmarkInstances is the router's hot read: Instances from the cache.
func BenchmarkInstances(b *testing.B) {
	f := marathontest.New(marathontest.Options{})
	defer f.Close()
	if err := f.SeedApps(managed(b, fixture(b, "v2_apps_embed_tasks_response_marathon14_healthchecks.json"))); err != nil {
		b.Fatal(err)
	}
	s := newSched(b, Config{URLs: []string{f.URL}, Group: "/"})
	ctx := context.Background()
	if err := s.resync(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if ins, _ := s.Instances(ctx, "nginx-green"); len(ins) != 3 {
			b.Fatal(len(ins))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/instances-call")
}

// BenchmarkDecodeApps decodes a real 1.4 app list (4 apps, 4 tasks).
func BenchmarkDecodeApps(b *testing.B) {
	doc := fixture(b, "v2_apps_embed_tasks_response_marathon14_healthchecks.json")
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeApps(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResync is one full re-read against the fake (HTTP included).
func BenchmarkResync(b *testing.B) {
	f := marathontest.New(marathontest.Options{})
	defer f.Close()
	if err := f.SeedApps(managed(b, fixture(b, "v2_apps_embed_tasks_response_marathon14_healthchecks.json"))); err != nil {
		b.Fatal(err)
	}
	s := newSched(b, Config{URLs: []string{f.URL}, Group: "/"})
	for b.Loop() {
		if err := s.resync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/resync")
}
