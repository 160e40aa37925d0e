package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// errOlder is wrapped by the refusal of a push whose commit is an
// ancestor of the commit the app runs: a replayed old delivery.
var errOlder = errors.New("older than the deployed commit")

// checkout fetches exactly p.Commit from p.CloneURL into a new folder and
// returns it without its .git: the deploy gets a plain tree, as with a git
// push. The caller removes the folder; on error checkout removes it.
//
// When the app runs another commit, checkout also fetches that commit's
// history (at most ancestryDepth commits) and refuses p with errOlder if
// p.Commit is among them: a push that would take the app back in time.
func (g *GitHub) checkout(ctx context.Context, p Push, log io.Writer) (string, error) {
	if err := checkCloneURL(p.CloneURL); err != nil {
		return "", err
	}
	if !commitRE.MatchString(p.Commit) {
		return "", fmt.Errorf("fetch %s: %q is not a commit id", p.Repo, p.Commit)
	}
	dir, err := os.MkdirTemp("", "flock-github-")
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", p.Repo, err)
	}
	if err := g.checkoutInto(ctx, dir, p, log); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func (g *GitHub) checkoutInto(ctx context.Context, dir string, p Push, log io.Writer) error {
	env := gitEnv()
	if h := g.authHeader(p.CloneURL); h != "" {
		// The token travels in the environment, scoped to the clone URL's
		// origin: never on a command line, in a URL or in a log.
		u, _ := url.Parse(p.CloneURL)
		env = append(env, "GIT_CONFIG_COUNT=1",
			"GIT_CONFIG_KEY_0=http."+u.Scheme+"://"+u.Host+"/.extraHeader",
			"GIT_CONFIG_VALUE_0="+h)
	}
	fmt.Fprintf(log, "-----> Fetching %s at %s\n", redact(p.CloneURL), p.Commit)
	steps := [][]string{
		{"init", "-q", "--initial-branch=main", dir},
		{"-C", dir, "fetch", "-q", "--no-tags", "--depth", "1", "--", p.CloneURL, p.Commit},
	}
	for _, args := range steps {
		if err := runGit(ctx, env, log, args...); err != nil {
			return fmt.Errorf("fetch %s at %s: %w", redact(p.CloneURL), p.Commit, err)
		}
	}
	if err := g.checkAncestry(ctx, env, dir, p, log); err != nil {
		return err
	}
	if err := runGit(ctx, env, log, "-C", dir, "checkout", "-q", p.Commit); err != nil {
		return fmt.Errorf("fetch %s at %s: %w", redact(p.CloneURL), p.Commit, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, ".git")); err != nil {
		return fmt.Errorf("fetch %s: %w", p.Repo, err)
	}
	return nil
}

// ancestryDepth is how much of the deployed commit's history is fetched to
// tell whether a push is older: a replay of a push more than this many
// commits old is not recognised as older (the deploy then goes ahead).
const ancestryDepth = 1000

// checkAncestry returns an error wrapping errOlder when p.Commit is an
// ancestor of the commit the app runs. Flock decides with git in the
// fetched repository, not GitHub's compare API, so it needs no token and
// works for any git host. When the deployed commit cannot be fetched (it
// came from another repository, or was force-pushed away) Flock cannot
// tell, says so in the log, and deploys.
func (g *GitHub) checkAncestry(ctx context.Context, env []string, dir string, p Push, log io.Writer) error {
	if g.cfg.Deployed == nil {
		return nil
	}
	current, _ := g.cfg.Deployed(p.Name)
	if current == "" || current == p.Commit || !commitRE.MatchString(current) {
		return nil
	}
	if err := runGit(ctx, env, io.Discard, "-C", dir, "fetch", "-q", "--no-tags", "--depth", strconv.Itoa(ancestryDepth),
		"--", p.CloneURL, current); err != nil {
		fmt.Fprintf(log, "-----> Deployed commit %s is not in %s: deploying without comparing\n", short(current), redact(p.CloneURL))
		return nil
	}
	err := runGit(ctx, env, io.Discard, "-C", dir, "merge-base", "--is-ancestor", p.Commit, current)
	if err == nil {
		return fmt.Errorf("commit %s is an ancestor of %s, the commit %s runs: %w", short(p.Commit), short(current), p.Name, errOlder)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		fmt.Fprintf(log, "-----> Could not compare with the deployed commit %s: deploying\n", short(current))
	}
	return nil
}

// authHeader returns the Authorization header for fetching cloneURL with
// the token, or "" when the token must not be sent there: only to GitHub
// (github.com or the configured API host) and only over https, or plain
// http to this machine.
func (g *GitHub) authHeader(cloneURL string) string {
	if g.cfg.Token == "" {
		return ""
	}
	u, err := url.Parse(cloneURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	host := u.Hostname()
	trusted := host == "github.com"
	if api, err := url.Parse(g.cfg.APIURL); err == nil && g.cfg.APIURL != "" && api.Hostname() == host {
		trusted = true
	}
	ip := net.ParseIP(host)
	if u.Scheme == "http" && (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		trusted = false
	}
	if !trusted {
		return ""
	}
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+g.cfg.Token))
}

// baseGitEnv holds the settings of every git command Flock runs: no
// prompts, no system or user configuration, and only network transports.
func baseGitEnv() []string {
	return []string{
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_ALLOW_PROTOCOL=https:http:ssh",
		"GIT_ASKPASS=true",
		"SSH_ASKPASS=true",
	}
}

// gitEnv is baseGitEnv and Flock's environment without its GIT_ settings.
func gitEnv() []string {
	env := baseGitEnv()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GIT_") && k != "GIT_SSH" && k != "GIT_SSH_COMMAND" {
			continue // the caller's git settings must not steer the fetch
		}
		env = append(env, kv)
	}
	return env
}

// runGit runs git with args, copying its output to log; on failure the
// error carries the last lines git printed.
func runGit(ctx context.Context, env []string, log io.Writer, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = env
	cmd.Stdout = io.MultiWriter(log, &out)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 500 {
			msg = msg[len(msg)-500:]
		}
		if msg != "" {
			return fmt.Errorf("git %s: %w: %s", gitVerb(args), err, msg)
		}
		return fmt.Errorf("git %s: %w", gitVerb(args), err)
	}
	return nil
}

// gitVerb returns the git subcommand in args, for error messages.
func gitVerb(args []string) string {
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-C", "-c":
			i++
		default:
			return args[i]
		}
	}
	return "git"
}
