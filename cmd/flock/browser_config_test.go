package main

import (
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/chromedp/chromedp"
)

// TestDashboardConfigAndDomains: from the app page in a real browser, a
// user adds a domain (HAProxy routes it at once), sets a config var (the
// app serves it; the page shows the key and never the value), unsets it
// and removes the domain, with the CSRF token of the session.
func TestDashboardConfigAndDomains(t *testing.T) {
	exe := testkit.RequireChromium(t)
	f := newFlock(t)
	f.start()
	f.mustCLI("deploy", "--app", "envapp", copyEnvApp(t))
	ctx := headless(t, exe)
	const domain, value = "www.example.test", "from-the-browser-42"

	browse(t, ctx, "log in and open envapp's page",
		chromedp.Navigate("http://"+f.api+"/apps/envapp"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), f.token()),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#add-domain")),
		pollJS(`document.body.dataset.sse === 'open'`),
	)

	browse(t, ctx, "add a domain",
		chromedp.SetValue(chromedp.CSS(`#add-domain input[name=host]`), domain),
		clickJS(`#add-domain button[type=submit]`),
		pollJS(`(document.querySelector('#domains') || {textContent: ''}).textContent.includes('`+domain+`')`),
	)
	if code, body := f.getPath(domain, "/COLOR"); code != 200 || body != "blue" {
		t.Errorf("%s through HAProxy after adding it on the page: %d %q", domain, code, body)
	}

	browse(t, ctx, "set a config var",
		chromedp.SetValue(chromedp.CSS(`#set-config input[name=key]`), "GREETING"),
		chromedp.SetValue(chromedp.CSS(`#set-config input[name=value]`), value),
		clickJS(`#set-config button[type=submit]`),
		pollJS(`(document.querySelector('#config-keys') || {textContent: ''}).textContent.includes('GREETING')`),
		pollJS(`document.querySelector('#set-config input[name=value]').value === ''`), // the form forgets the value
	)
	testkit.WaitFor(t, 30*time.Second, "the app to serve the new GREETING", func() bool {
		c, b := f.getPath("envapp.localhost", "/GREETING")
		return c == 200 && b == value
	})
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil || strings.Contains(html, value) {
		t.Errorf("the page shows the config value (or cannot be read: %v)", err)
	}

	browse(t, ctx, "unset the config var",
		clickJS(`button.unset-config[aria-label="unset GREETING"]`),
		pollJS(`document.querySelector('#config-keys') === null`),
	)
	testkit.WaitFor(t, 30*time.Second, "GREETING unset", func() bool {
		c, b := f.getPath("envapp.localhost", "/GREETING")
		return c == 200 && b == "from the descriptor"
	})

	browse(t, ctx, "remove the domain",
		clickJS(`button.remove-domain[aria-label="remove `+domain+`"]`),
		pollJS(`document.querySelector('#domains') === null`),
	)
	testkit.WaitFor(t, 20*time.Second, domain+" gone", func() bool { c, _, _ := f.get(domain); return c == 404 })
	saveScreenshot(t, ctx, "dashboard-config.png")
}
