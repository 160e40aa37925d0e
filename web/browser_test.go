package web

import (
	"context"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// browser starts a headless Chromium with a fresh profile and returns a tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(testkit.RequireChromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.NoFirstRun,
		// No UserDataDir(t.TempDir()): chromedp makes a fresh profile of
		// its own and, at the end, kills Chromium's leftover children
		// (the crashpad handler) and retries the removal; they may still
		// write in the profile after the browser exits, and t.TempDir's
		// removal would fail the test with "directory not empty".
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // start the browser without a deadline
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// step runs browser actions with a deadline, failing the test with what.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// click finds the element and clicks it in one step inside the page: a
// row the live updates re-render between a find and a click would
// otherwise be a stale node.
func click(selector string) chromedp.Action[chromedp.Void] {
	return until(`(() => { const e = document.querySelector(` + "`" + selector + "`" + `); if (!e) return false; e.click(); return true })()`)
}

func until(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(15*time.Second), chromedp.WithPollingInterval(20*time.Millisecond))
}

func TestBrowser(t *testing.T) {
	s, f := newTestServer(t, nil)
	if err := f.Scale(t.Context(), "hello", 1); err != nil {
		t.Fatal(err)
	}
	seedHistory(s, f)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	ctx := browser(t)

	step(t, ctx, "log in",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#app-hello")),
		until(`document.querySelector('#app-hello .state').textContent === 'running'`),
		until(`document.body.dataset.sse === 'open'`),
		// Survives only as long as the page is not reloaded.
		chromedp.Evaluate[chromedp.Void](`window.flockNoReload = 'kept'`),
	)
	step(t, ctx, "scale hello to 2 from its row",
		chromedp.SetValue(chromedp.CSS(`#app-hello input[name=instances]`), "2"),
		click(`#app-hello button.scale`),
		until(`document.querySelector('#app-hello .inst').textContent.trim() === '2/2'`),
	)
	if a, _ := f.App(t.Context(), "hello"); a.Desired != 2 {
		t.Errorf("after clicking Scale: desired %d, want 2", a.Desired)
	}

	// A change the page did not cause: only the event stream can tell it.
	f.add("fresh", 1)
	f.Emit(deploy.Event{App: "fresh", Type: "deploy", Message: "v1 live"})
	step(t, ctx, "a new app appears without reload",
		until(`document.querySelector('#app-fresh .state') !== null`),
		until(`document.getElementById('summary').textContent.startsWith('3 apps')`),
	)
	if err := f.Sleep(t.Context(), "world"); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "world's row turns to sleeping on the platform's event",
		until(`document.querySelector('#app-world').dataset.state === 'sleeping'`),
	)

	step(t, ctx, "sleep hello",
		click(`#app-hello button.sleep`),
		until(`document.querySelector('#app-hello').dataset.state === 'sleeping'`),
		until(`document.querySelector('#app-hello .inst').textContent.trim() === '0/2'`),
	)
	step(t, ctx, "wake hello",
		click(`#app-hello button.wake`),
		until(`document.querySelector('#app-hello').dataset.state === 'running'`),
		until(`document.querySelector('#app-hello .inst').textContent.trim() === '2/2'`),
	)
	kept, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.flockNoReload || ''`))
	if err != nil || kept != "kept" {
		t.Errorf("the page reloaded during the test (marker %q, %v)", kept, err)
	}
	screenshot(t, ctx, "apps.png")

	step(t, ctx, "the app page streams the live log",
		chromedp.Navigate(srv.URL+"/apps/hello"),
		chromedp.WaitVisible(chromedp.CSS("#live")),
		until(`document.querySelector('#applog').textContent.includes('hello from the app')`),
		until(`document.querySelector('svg.chart') !== null`),
	)
	screenshot(t, ctx, "app.png")

	step(t, ctx, "a deploy's page shows its log",
		chromedp.Navigate(srv.URL+"/deploys/hello-1"),
		until(`document.querySelector('#deploylog').textContent.includes('v1 live')`),
	)
	screenshot(t, ctx, "deploy.png")

	step(t, ctx, "the apps page on a phone",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#app-hello")),
	)
	screenshot(t, ctx, "apps-phone.png")
}

// seedHistory fills the last hour with a day-like curve, so the
// sparklines and the chart have something to show.
func seedHistory(s *Server, f *fakePlatform) {
	apps, _ := f.Apps(context.Background())
	now := time.Now()
	for i := 360; i > 0; i-- {
		at := now.Add(-time.Duration(i) * 10 * time.Second)
		for j := range apps {
			apps[j].RequestRate = 3 + 2.5*math.Sin(float64(i+40*j)/30)
		}
		s.history.record(at, apps)
	}
}

// screenshot saves the page to the test's temp dir and, when set, to
// $FLOCK_SCREENSHOT_DIR, for a person to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv("FLOCK_SCREENSHOT_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name), png, 0o644); err != nil {
			t.Errorf("save screenshot: %v", err)
		}
	}
}
