package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openRun runs `flock open ARGS` against f with the given environment
// (on top of a PATH holding only pathDir) and returns stdout and stderr.
func openRun(t *testing.T, f *flock, pathDir string, env []string, args ...string) (string, string, error) {
	t.Helper()
	full := append([]string{"--api-url", "http://" + f.api, "--data-dir", f.dataDir, "open"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, flockBin, full...)
	cmd.Env = append([]string{"PATH=" + pathDir, "HOME=" + t.TempDir(), "FLOCK_TOKEN="}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// script writes an executable shell script named name into dir.
func script(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestOpen runs `flock open` against a running Flock: with no browser it
// prints the URL, which answers through HAProxy; with one it hands the
// URL to xdg-open; an unknown app fails with the reason.
func TestOpen(t *testing.T) {
	f := newFlock(t)
	f.start()
	f.mustCLI("deploy", copyExample(t, "hello"))
	want := f.apps()["hello"].URL
	if want == "" {
		t.Fatal("hello has no URL")
	}

	empty := t.TempDir() // a PATH without xdg-open
	withOpener := t.TempDir()
	opened := filepath.Join(t.TempDir(), "opened")
	script(t, withOpener, "xdg-open", `printf '%s\n' "$1" >> `+opened+"\n")
	failing := t.TempDir()
	script(t, failing, "xdg-open", "echo 'xdg-open: no method available for opening' >&2; exit 3\n")

	for _, tt := range []struct {
		name, path string
		env        []string
		args       []string
	}{
		{"no display", withOpener, []string{"DISPLAY=", "WAYLAND_DISPLAY="}, nil},
		{"display but no xdg-open", empty, []string{"DISPLAY=:99"}, nil},
		{"xdg-open fails", failing, []string{"DISPLAY=:99"}, nil},
		{"--print", withOpener, []string{"DISPLAY=:99"}, []string{"--print"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := openRun(t, f, tt.path, tt.env, append(tt.args, "hello")...)
			if err != nil {
				t.Fatalf("flock open: %v\nstdout %q\nstderr %q", err, out, errOut)
			}
			if out != want+"\n" {
				t.Errorf("stdout %q, want the URL %q alone", out, want)
			}
		})
	}
	if _, err := os.Stat(opened); err == nil {
		t.Error("xdg-open ran where the URL was to be printed")
	}

	// The printed URL is the app's: it answers through HAProxy.
	u, err := url.Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := f.get(u.Host); code != 200 || !strings.Contains(body, "Hello from Flock") {
		t.Errorf("GET %s through HAProxy: %d %q", want, code, body)
	}

	t.Run("browser", func(t *testing.T) {
		out, errOut, err := openRun(t, f, withOpener, []string{"DISPLAY=:99"}, "hello")
		if err != nil {
			t.Fatalf("flock open: %v %s", err, errOut)
		}
		if out != "" || !strings.Contains(errOut, "Opening "+want) {
			t.Errorf("stdout %q stderr %q, want nothing and Opening %s", out, errOut, want)
		}
		b, _ := os.ReadFile(opened)
		if string(b) != want+"\n" {
			t.Errorf("xdg-open got %q, want %q", b, want)
		}
	})

	for _, tt := range []struct{ app, want string }{
		{"nope", "not found"},
		{"Bad_Name", "DNS label"},
	} {
		t.Run("unknown "+tt.app, func(t *testing.T) {
			out, errOut, err := openRun(t, f, withOpener, []string{"DISPLAY="}, tt.app)
			if err == nil {
				t.Fatalf("flock open %s succeeded: %q", tt.app, out)
			}
			if out != "" || !strings.Contains(errOut, tt.app) || !strings.Contains(errOut, tt.want) {
				t.Errorf("stdout %q stderr %q, want an error naming %s and %q", out, errOut, tt.app, tt.want)
			}
		})
	}
}
