package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
)

func TestClean(t *testing.T) {
	tests := []struct{ name, in, want, wantText string }{
		{"plain", "alice", "alice", "alice"},
		{"unicode kept", "zoë 日本", "zoë 日本", "zoë 日本"},
		{"colour (CSI)", "\x1b[31mred\x1b[0m", "red", "red"},
		{"clear screen", "a\x1b[2J\x1b[Hb", "ab", "ab"},
		{"window title (OSC, BEL)", "\x1b]0;pwned\x07bob", "bob", "bob"},
		{"clipboard (OSC 52, ST)", "x\x1b]52;c;ZWNobyBoaQ==\x1b\\y", "xy", "xy"},
		{"DCS", "\x1bP+q544e\x1b\\z", "z", "z"},
		{"two-byte escape", "\x1bcreset", "reset", "reset"},
		{"charset escape", "\x1b(Babc", "abc", "abc"},
		{"8-bit CSI", "\u009b31mred", "red", "red"},
		{"8-bit OSC", "\u009d0;t\u009cok", "ok", "ok"},
		{"carriage return hides text", "innocent\rEVIL", "innocentEVIL", "innocentEVIL"},
		{"backspace, bell, NUL, DEL", "a\bb\x07c\x00d\x7fe", "abcde", "abcde"},
		{"bidi override", "file\u202egnp.exe", "filegnp.exe", "filegnp.exe"},
		{"invalid UTF-8", "a\xffb", "a\ufffdb", "a\ufffdb"},
		{"newline and tab", "one\ttwo\nthree", "one two three", "one\ttwo\nthree"},
		{"unterminated OSC ends at the line", "\x1b]0;title\nnext", " next", "\nnext"},
		{"ESC at the very end", "tail\x1b", "tail", "tail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clean(tt.in); got != tt.want {
				t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := cleanText(tt.in); got != tt.wantText {
				t.Errorf("cleanText(%q) = %q, want %q", tt.in, got, tt.wantText)
			}
		})
	}
}

// TestCleanerSplitWrites feeds a log byte by byte: a sequence or a UTF-8
// rune cut between writes is still handled whole.
func TestCleanerSplitWrites(t *testing.T) {
	in := "start \x1b]0;pwned\x07zoë \x1b[1;31mred\x1b[0m 日本\n"
	var b bytes.Buffer
	c := &cleaner{w: &b}
	for i := 0; i < len(in); i++ {
		if _, err := c.Write([]byte{in[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	if want := "start zoë red 日本\n"; b.String() != want {
		t.Errorf("cleaned %q, want %q", b.String(), want)
	}
}

// hostile is what an attacker gets into the API's answers: an app name
// cannot hold escapes (it is a DNS label), but a pusher's name, a commit
// message, an error and an app's output can.
const hostile = "\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x1b[1A\rmallory\u009b31m"

// TestCLIPrintsNoEscapes runs the client commands against an API that
// answers hostile strings, and checks what reaches the terminal.
func TestCLIPrintsNoEscapes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/apps", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]map[string]any{{"name": "web", "state": "failed", "error": "crashed: " + hostile,
			"release": "v1" + hostile, "url": "http://web.localhost" + hostile, "desired": 1}})
	})
	mux.HandleFunc("/api/v1/apps/web/releases", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"releases": []any{}, "deploys": []map[string]any{{
			"id": "d1", "app": "web", "release": "v2", "commit": "\x1b[2Jabcdef0123", "trigger": "github push by " + hostile,
			"status": "failed", "error": "build failed: " + hostile}}})
	})
	mux.HandleFunc("/api/v1/apps/web/logs", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("line one " + hostile + "\nline two\n"))
	})
	mux.HandleFunc("/api/v1/apps/web/rollback", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("rolling back to a commit by " + hostile + "\nrollback failed: " + hostile + "\n"))
	})
	mux.HandleFunc("/api/v1/apps/web/sleep", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"error":"cannot sleep: ` + strings.ReplaceAll(hostile, "\x1b", `\u001b`) + `"}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, args := range [][]string{{"apps"}, {"apps", "--json"}, {"releases", "web"}, {"logs", "web"}, {"rollback", "web"}, {"sleep", "web"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			root := rootCmd()
			root.SetArgs(append(args, "--api-url", srv.URL, "--token", "t"))
			root.SetOut(&out)
			root.SetErr(&errOut)
			err := root.Execute()
			printed := out.String() + errOut.String()
			if err != nil {
				printed += err.Error()
			}
			for _, r := range printed {
				if r != '\n' && r != '\t' && (unicode.IsControl(r) || r == '\u009b') {
					t.Fatalf("flock %s printed control character %U: %q", strings.Join(args, " "), r, printed)
				}
			}
			if !strings.Contains(printed, "mallory") {
				t.Errorf("flock %s dropped the visible text: %q", strings.Join(args, " "), printed)
			}
		})
	}
}
