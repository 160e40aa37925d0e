package webhook

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
)

// The hook's call back to the Remote.
const (
	hookSecretHeader = "X-Flock-Hook-Secret"
	hookCommitHeader = "X-Flock-Commit"
	hookRefHeader    = "X-Flock-Ref"
	statusTrailer    = "X-Flock-Status"
)

// errDeployFailed: the Remote reported a failed deploy, and said why in the log.
var errDeployFailed = errors.New("deploy failed")

// hookScript is the pre-receive hook installed in every bare repository:
// it runs HookCommand, which ends in HookMain.
func hookScript(command []string) []byte {
	var b bytes.Buffer
	b.WriteString("#!/bin/sh\n# Installed by Flock: deploys the pushed commit and streams the log back.\nexec")
	for _, a := range command {
		b.WriteString(" '" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	b.WriteString(" \"$@\"\n")
	return b.Bytes()
}

// HookMain is the pre-receive hook of Flock's git remote, run by the hidden
// `flock git-hook` subcommand (args are the arguments after it; a
// pre-receive hook gets none). It reads the pushed "old new ref" lines,
// sends the tree of the pushed branch (main or master) with `git archive`
// to the Remote, copies the streamed deploy log to stdout, which git shows
// the pusher as "remote:" lines, and returns 1 when the deploy failed so
// that git rejects the push. It returns the process exit status.
func HookMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	url, secret := os.Getenv("FLOCK_HOOK_URL"), os.Getenv("FLOCK_HOOK_SECRET")
	if url == "" || secret == "" {
		fmt.Fprintln(stdout, " !     Push through Flock's HTTP remote (http://<flock>/git/<app>.git) to deploy.")
		return 1
	}
	var updates [][3]string
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 {
			updates = append(updates, [3]string{f[0], f[1], f[2]})
		}
	}
	if len(updates) != 1 {
		fmt.Fprintln(stdout, " !     Push one branch at a time: git push flock main")
		return 1
	}
	newRev, ref := updates[0][1], updates[0][2]
	branch, _ := strings.CutPrefix(ref, "refs/heads/")
	switch {
	case ref != "refs/heads/main" && ref != "refs/heads/master":
		fmt.Fprintf(stdout, " !     Flock deploys the branch main (or master), not %s.\n", ref)
		fmt.Fprintln(stdout, " !     To deploy another branch: git push flock <branch>:main")
		return 1
	case zeroCommit(newRev):
		fmt.Fprintf(stdout, " !     Deleting %s is not supported; use `flock destroy <app>` to remove an app.\n", branch)
		return 1
	}
	if err := postTree(url, secret, newRev, ref, stdout, stderr); err != nil {
		if !errors.Is(err, errDeployFailed) { // else Flock said why
			fmt.Fprintf(stdout, " !     %v\n", err)
		}
		return 1
	}
	return 0
}

// postTree streams `git archive <rev>` to the Remote and copies the answer,
// the deploy log, to out line by line as it arrives.
func postTree(url, secret, rev, ref string, out, stderr io.Writer) error {
	pr, pw := io.Pipe()
	archive := exec.Command("git", "archive", "--format=tar.gz", rev)
	archive.Stdout = pw
	archive.Stderr = stderr
	if err := archive.Start(); err != nil {
		return fmt.Errorf("git archive: %w", err)
	}
	archived := make(chan error, 1)
	go func() {
		err := archive.Wait()
		pw.CloseWithError(err)
		archived <- err
	}()
	req, err := http.NewRequest(http.MethodPost, url, pr)
	if err != nil {
		pr.Close()
		return fmt.Errorf("call Flock: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-tar")
	req.Header.Set(hookSecretHeader, secret)
	req.Header.Set(hookCommitHeader, rev)
	req.Header.Set(hookRefHeader, ref)
	// Straight to Flock on this machine: no proxy from the environment.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		pr.Close()
		return fmt.Errorf("call Flock: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("flock refused the push (%s): %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	// Flock reads the whole tree before it answers 200.
	if err := <-archived; err != nil {
		return fmt.Errorf("git archive %s: %w", rev, err)
	}
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if _, werr := out.Write(line); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("deploy log cut off: %w", err)
		}
	}
	switch resp.Trailer.Get(statusTrailer) {
	case "ok":
		return nil
	case "failed":
		return errDeployFailed
	}
	return errors.New("the deploy log ended without an outcome")
}
