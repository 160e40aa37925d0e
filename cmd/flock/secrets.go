package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Flock's secrets (the API token, the GitHub webhook secret) never need to
// travel on a command line, where every local user and every app can read
// them in /proc/<pid>/cmdline: each has a -file flag and an environment
// variable, and the flag itself only stays for compatibility, with a
// warning.

// secretSource is where one secret may come from.
type secretSource struct {
	flag      string // "token"
	value     string // --token or its environment variable
	onCmdline bool   // --token was given on the command line
	file      string // --token-file or its environment variable
}

// resolve returns the secret: from the file when one is named, else the
// value. Both on the command line is a mistake Flock refuses to guess at.
func (s secretSource) resolve() (string, error) {
	if s.file == "" {
		return s.value, nil
	}
	if s.onCmdline {
		return "", fmt.Errorf("--%s and --%s-file both given: give one (the file keeps the secret off the command line)", s.flag, s.flag)
	}
	b, err := os.ReadFile(s.file)
	if err != nil {
		return "", fmt.Errorf("--%s-file: %w", s.flag, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("--%s-file %s is empty", s.flag, s.file)
	}
	return v, nil
}

// warn logs what the operator should change about where the secret comes from.
func (s secretSource) warn(log *slog.Logger) {
	if s.onCmdline {
		log.Warn("--"+s.flag+" on the command line is readable by every local user and app in /proc/<pid>/cmdline; use --"+s.flag+"-file or the environment instead",
			"flag", s.flag)
	}
	if s.file == "" {
		return
	}
	if fi, err := os.Stat(s.file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("secret file readable by others; chmod 600 it", "file", s.file, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
}

// secretEnv are the variables that may carry secrets. Flock removes them
// from its own environment once read, so that the processes it starts
// (builds run an app's own scripts) do not inherit them.
var secretEnv = []string{"FLOCK_TOKEN", "FLOCK_GITHUB_SECRET", "FLOCK_GITHUB_TOKEN", "FLOCK_MARATHON_PASSWORD", "FLOCK_MARATHON_URL"}

func dropSecretEnv() {
	for _, k := range secretEnv {
		os.Unsetenv(k)
	}
}
