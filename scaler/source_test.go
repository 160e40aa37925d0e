package scaler

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func TestParseProc(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		cur     int
		old     []int
		wantErr bool
	}{
		{
			name: "2.6 with an old worker",
			in: "#<PID>          <type>          <reloads>       <uptime>        <version>      \n" +
				"18834           master          2 [failed: 0]   0d00h01m01s     2.6.12-1+deb12u4\n" +
				"# workers\n" +
				"19001           worker          0               0d00h00m01s     2.6.12-1+deb12u4\n" +
				"# old workers\n" +
				"18950           worker          1               0d00h00m20s     2.6.12-1+deb12u4\n" +
				"18837           worker          2               0d00h01m01s     2.6.12-1+deb12u4\n" +
				"# programs\n\n",
			cur: 19001, old: []int{18950, 18837},
		},
		{
			name: "older versions list old workers with the workers",
			in: "#<PID>          <type>          <relative PID>  <reloads>       <uptime>\n" +
				"100             master          0               1               0d00h00m09s\n" +
				"# workers\n" +
				"102             worker          1               1               0d00h00m09s\n" +
				"110             worker          1               0               0d00h00m01s\n",
			cur: 110, old: []int{102},
		},
		{name: "no worker", in: "Unknown command.\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur, old, err := parseProc([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if cur != tt.cur {
				t.Errorf("current = %d, want %d", cur, tt.cur)
			}
			if diff := cmp.Diff(tt.old, old); diff != "" {
				t.Errorf("old (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHTTPStatsErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	if _, err := HTTPStats(srv.URL + "/stats;csv")(context.Background()); err == nil {
		t.Error("503: no error")
	}
	srv.Close()
	if _, err := HTTPStats(srv.URL + "/stats;csv")(context.Background()); err == nil {
		t.Error("closed server: no error")
	}
}

// TestRun shows Run ticking at once and then on its schedule, and
// returning when its context ends.
func TestRun(t *testing.T) {
	var reads atomic.Int32
	stats := func(context.Context) ([]byte, error) {
		reads.Add(1)
		return csvOf([]Row{be(1, 0)}), nil
	}
	s, err := New(Config{Every: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		newFakePlatform(runningApp()), StatsFunc(stats))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, 10*time.Second, "two ticks", func() bool { return reads.Load() >= 2 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestAddFlags(t *testing.T) {
	var c Config
	fs := pflag.NewFlagSet("flock", pflag.ContinueOnError)
	c.AddFlags(fs)
	if err := fs.Parse([]string{"--scale-every=30s", "--target-sessions=50", "--scale-cooldown=5m"}); err != nil {
		t.Fatal(err)
	}
	want := Config{Every: 30 * time.Second, TargetSessions: 50, UpRatio: 0.9, DownRatio: 0.5, Step: 2, Cooldown: 5 * time.Minute}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}
