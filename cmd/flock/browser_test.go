package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/flock-paas/flock/deploy/testkit"
)

// TestDashboardSteersAnApp follows the README as a new user would: start
// Flock, deploy the hello example with the CLI, open the dashboard in a
// browser, log in with the token and steer the app from the page (scale,
// sleep, wake), while the real platform behind it does the work. The page
// is never reloaded: every change it shows arrives over the event stream,
// including a wake caused by a request through HAProxy.
func TestDashboardSteersAnApp(t *testing.T) {
	exe := testkit.RequireChromium(t)
	f := newFlock(t)
	f.start()
	f.mustCLI("deploy", copyExample(t, "hello"))
	ctx := headless(t, exe)
	row := `document.querySelector('#app-hello')`

	browse(t, ctx, "log in and see hello running",
		chromedp.Navigate("http://"+f.api+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), f.token()),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#app-hello")),
		pollJS(row+`.dataset.state === 'running'`),
		pollJS(row+`.querySelector('.state').textContent.trim() === 'running'`),
		pollJS(row+`.querySelector('.inst').textContent.trim() === '1/1'`),
		pollJS(`document.body.dataset.sse === 'open'`),
		// Survives only as long as the page is not reloaded.
		chromedp.Evaluate[chromedp.Void](`window.flockNoReload = 'kept'`),
	)

	browse(t, ctx, "scale hello to 2 from its row",
		chromedp.SetValue(chromedp.CSS(`#app-hello input[name=instances]`), "2"),
		clickJS(`#app-hello button.scale`),
		pollJS(row+`.querySelector('.inst').textContent.trim() === '2/2'`),
		pollJS(row+`.dataset.state === 'running'`),
	)
	if a := f.apps()["hello"]; a.Desired != 2 || a.HealthyCount() != 2 {
		t.Errorf("flock apps after clicking Scale: %d/%d healthy/desired, want 2/2", a.HealthyCount(), a.Desired)
	}

	browse(t, ctx, "sleep hello from its row",
		clickJS(`#app-hello button.sleep`),
		pollJS(row+`.dataset.state === 'sleeping'`),
		pollJS(row+`.querySelector('.state').textContent.trim() === 'sleeping'`),
		pollJS(row+`.querySelector('.inst').textContent.trim().startsWith('0/')`),
		pollJS(row+`.querySelector('button.wake') !== null`),
	)
	testkit.WaitFor(t, 10*time.Second, "flock apps to show hello asleep with no instance", func() bool {
		a := f.apps()["hello"]
		return a.State == "sleeping" && len(a.Instances) == 0
	})

	browse(t, ctx, "wake hello from its row",
		clickJS(`#app-hello button.wake`),
		pollJS(row+`.dataset.state === 'running'`),
		pollJS(row+`.querySelector('.inst').textContent.trim() === '2/2'`),
	)
	if a := f.apps()["hello"]; a.State != "running" || a.HealthyCount() != 2 {
		t.Errorf("flock apps after clicking Wake: %s with %d healthy, want running with 2", a.State, a.HealthyCount())
	}

	// A change the page did not cause: the CLI puts hello to sleep and a
	// visitor's request through HAProxy wakes it; only the event stream
	// can tell the open page.
	f.mustCLI("sleep", "hello")
	browse(t, ctx, "the row turns to sleeping after `flock sleep`",
		pollJS(row+`.dataset.state === 'sleeping'`),
	)
	if code, body, _ := f.get("hello.localhost"); code != 200 || !strings.Contains(body, "Hello from Flock") {
		t.Fatalf("a request through HAProxy to the sleeping app: %d %q", code, body)
	}
	browse(t, ctx, "the request's wake reaches the open page",
		pollJS(row+`.dataset.state === 'running'`),
		pollJS(row+`.querySelector('.state').textContent.trim() === 'running'`),
		pollJS(row+`.querySelector('.inst').textContent.trim() === '2/2'`),
	)

	kept, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.flockNoReload || ''`))
	if err != nil || kept != "kept" {
		t.Errorf("the page reloaded during the test (marker %q, %v)", kept, err)
	}
	saveScreenshot(t, ctx, "dashboard-real.png")
}

// headless starts a headless Chromium with a fresh profile and returns a tab.
func headless(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
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

// browse runs browser actions with a deadline long enough for a real
// scale-up on a busy machine, failing the test with what.
func browse(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		body, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`(document.querySelector('#app-hello') || document.body).outerHTML`))
		// flock's own output is logged by its cleanup when the test fails.
		t.Fatalf("%s: %v\nhello's row: %s", what, err, body)
	}
}

// clickJS finds the element and clicks it in one step inside the page: a
// row the live updates re-render between a find and a click would
// otherwise be a stale node.
func clickJS(selector string) chromedp.Action[chromedp.Void] {
	return pollJS(`(() => { const e = document.querySelector(` + "`" + selector + "`" + `); if (!e) return false; e.click(); return true })()`)
}

// pollJS waits until the expression is true in the page.
func pollJS(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(40*time.Second), chromedp.WithPollingInterval(20*time.Millisecond))
}

// saveScreenshot saves the page to the test's temp dir and, when set, to
// $FLOCK_SCREENSHOT_DIR, for a person to look at.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
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
