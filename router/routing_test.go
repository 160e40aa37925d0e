package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

func TestRoutingByHost(t *testing.T) {
	h := newHarness(t, nil)
	hello := newInstance(t, "hello.v1.1")
	other := newInstance(t, "other.v1.1")
	withDomains := app("other", other)
	withDomains.Domains = []string{"www.Example.com", "example.org"}
	h.r.Update([]deploy.App{app("hello", hello), withDomains})
	testkit.WaitFor(t, 5*time.Second, "hello routed", func() bool { return h.routesTo("hello.localhost", "hello.v1.1") })

	for _, tc := range []struct {
		name, host string
		code       int
		body       string
	}{
		{"app host", "hello.localhost", 200, "hello.v1.1"},
		{"any case and a port", "HeLLo.LocalHost:8000", 200, "hello.v1.1"},
		{"extra domain, lower-cased", "www.example.com", 200, "other.v1.1"},
		{"second extra domain", "EXAMPLE.org:80", 200, "other.v1.1"},
		{"app host of the other", "other.localhost", 200, "other.v1.1"},
		{"unknown host", "nope.localhost", 404, "No app answers at this address (Flock)."},
		{"no such subdomain", "x.hello.localhost", 404, "No app answers at this address (Flock)."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, hdr, err := h.get(tc.host)
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || body != tc.body {
				t.Errorf("GET Host %s = %d %q, want %d %q", tc.host, code, body, tc.code, tc.body)
			}
			if tc.code == 404 && !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
				t.Errorf("404 content type %q, want text/plain", hdr.Get("Content-Type"))
			}
		})
	}
	if got := hello.seenApps(); len(got) == 0 || got[0] != "hello" {
		t.Errorf("instance saw X-Flock-App %v, want hello", got)
	}

	t.Run("stats page", func(t *testing.T) {
		resp, err := http.Get("http://" + h.cfg.StatsAddr + "/stats;csv")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), "app_hello,hello.v1.1_") {
			t.Errorf("stats: %d %.200q", resp.StatusCode, b)
		}
		csv, err := h.currentStats()
		if err != nil || !strings.Contains(string(csv), "app_other,other.v1.1_") {
			t.Errorf("Stats() = %.200q, %v", csv, err)
		}
		all, err := h.r.statsAll(context.Background(), "show stat")
		if err != nil || len(all) == 0 || !all[0].Current {
			t.Errorf("statsAll() = %d workers, %v", len(all), err)
		}
	})

	t.Run("domain added at runtime", func(t *testing.T) {
		withDomains.Domains = append(withDomains.Domains, "new.example.net")
		h.r.Update([]deploy.App{app("hello", hello), withDomains})
		testkit.WaitFor(t, 5*time.Second, "new domain routed", func() bool { return h.routesTo("new.example.net", "other.v1.1") })
	})
}

func TestBackupAtZeroInstances(t *testing.T) {
	waker := newInstance(t, "waker")
	h := newHarness(t, func(c *Config) { c.WakerAddr = net.JoinHostPort(waker.Host, itoa(waker.Port)) })
	h.r.Update([]deploy.App{app("sleepy")})
	testkit.WaitFor(t, 5*time.Second, "waker answers for sleepy", func() bool { return h.routesTo("sleepy.localhost", "waker") })
	if got := waker.seenApps(); got[len(got)-1] != "sleepy" {
		t.Errorf("waker saw X-Flock-App %v, want sleepy", got)
	}
	in := newInstance(t, "sleepy.v1.1")
	h.r.Update([]deploy.App{app("sleepy", in)})
	testkit.WaitFor(t, 5*time.Second, "instance answers", func() bool { return h.routesTo("sleepy.localhost", "sleepy.v1.1") })
	h.r.Update([]deploy.App{app("sleepy")})
	testkit.WaitFor(t, 5*time.Second, "waker answers again", func() bool { return h.routesTo("sleepy.localhost", "waker") })
}

func TestNoWakerAnswers503(t *testing.T) {
	h := newHarness(t, nil)
	h.r.Update([]deploy.App{app("idle")})
	testkit.WaitFor(t, 5*time.Second, "503 with Retry-After", func() bool {
		code, _, hdr, err := h.get("idle.localhost")
		return err == nil && code == 503 && hdr.Get("Retry-After") != ""
	})
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestWaitRouted(t *testing.T) {
	h := newHarness(t, nil)
	in := newInstance(t, "w.v1.1")
	h.r.Update([]deploy.App{app("w", in)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.r.WaitRouted(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	if !h.routesTo("w.localhost", "w.v1.1") {
		t.Error("WaitRouted returned before the app was routed")
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := h.r.WaitRouted(short, "never"); err == nil {
		t.Error("WaitRouted of an app that does not exist returned nil")
	}
}
