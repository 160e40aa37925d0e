package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flock-paas/flock/builder"
	"github.com/flock-paas/flock/deploy"
)

// client talks to a Flock API with its token.
type client struct {
	base  string
	token string
	http  *http.Client
}

// newClient reads --api-url and the token (--token, else <data-dir>/token:
// the CLI on the machine that runs flock up needs no flag).
func newClient(cmd *cobra.Command) *client {
	base, _ := cmd.Flags().GetString("api-url")
	tok, _ := cmd.Flags().GetString("token")
	if tok == "" {
		dir, _ := cmd.Flags().GetString("data-dir")
		b, err := os.ReadFile(filepath.Join(dir, "token"))
		if err == nil {
			tok = strings.TrimSpace(string(b))
		}
	}
	return &client{base: strings.TrimSuffix(base, "/"), token: tok, http: &http.Client{}}
}

// do sends a request and returns the response when its status is 2xx;
// otherwise the API's {"error": ...} becomes the error.
func (c *client) do(method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is flock up? %w", err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, errors.New(cleanText(e.Error))
		}
		return nil, fmt.Errorf("%s %s: %s %s", method, path, resp.Status, cleanText(strings.TrimSpace(string(b))))
	}
	return resp, nil
}

func (c *client) getJSON(path string, v any) error {
	resp, err := c.do(http.MethodGet, path, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func (c *client) postJSON(path string, v any) error {
	var body io.Reader
	if v != nil {
		b, _ := json.Marshal(v)
		body = bytes.NewReader(b)
	}
	resp, err := c.do(http.MethodPost, path, body, "application/json")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// stream copies a streamed deploy log to out and reports its outcome from
// the final line ("deploy succeeded: <url>", "deploy failed: <why>", and
// the same for "rollback"). A final "failed" line becomes the command's
// error, printed once on stderr, not also on out.
func stream(resp *http.Response, out io.Writer) error {
	defer resp.Body.Close()
	sc := bufio.NewScanner(newCleanReader(resp.Body)) // build output, commit messages: others' text
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	last, held := "", ""
	for sc.Scan() {
		line := sc.Text()
		if held != "" {
			fmt.Fprintln(out, held)
			held = ""
		}
		if strings.HasPrefix(line, "deploy failed: ") || strings.HasPrefix(line, "rollback failed: ") {
			held = line
		} else {
			fmt.Fprintln(out, line)
		}
		if strings.TrimSpace(line) != "" {
			last = line
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the deploy log: %w", err)
	}
	for _, op := range []string{"deploy", "rollback"} {
		if strings.HasPrefix(last, op+" succeeded") {
			return nil
		}
		if strings.HasPrefix(last, op+" failed: ") {
			return errors.New(last)
		}
	}
	if held != "" {
		fmt.Fprintln(out, held)
	}
	return errors.New("the deploy log ended without an outcome (connection lost?)")
}

// printApps writes the apps table: one line per app, whatever its error
// says (newlines, tabs, a whole stack trace), and each app's error after
// the table, on one line cut to a readable length.
func printApps(w io.Writer, apps []deploy.App, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tINSTANCES\tRELEASE\tURL\tLAST REQUEST")
	var notes []string
	for _, a := range apps {
		last := "-"
		if a.LastRequestAt != nil {
			last = now.Sub(*a.LastRequestAt).Round(time.Second).String() + " ago"
		}
		state := string(a.State)
		msg := a.Error
		for _, in := range a.Instances {
			if msg == "" && in.LastExit != "" { // restarted: say why, e.g. out of memory
				msg = in.ID + " restarted after " + in.LastExit
			}
		}
		if msg != "" {
			state += " (see below)"
			msg = strings.Join(strings.Fields(clean(msg)), " ")
			if r := []rune(msg); len(r) > 300 {
				msg = string(r[:297]) + "..."
			}
			notes = append(notes, clean(a.Name)+": "+msg)
		}
		inst := fmt.Sprintf("%d/%d", a.HealthyCount(), a.Desired)
		for _, p := range a.Processes {
			healthy := 0
			for _, in := range p.Instances {
				if in.Healthy {
					healthy++
				}
			}
			inst += fmt.Sprintf(" %s:%d/%d", clean(p.Type), healthy, p.Desired)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", clean(a.Name), clean(state), inst, clean(a.Release), clean(a.URL), last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			if _, err := fmt.Fprintln(w, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// nameFromDir names the app of a tree whose descriptor has no name
// (a Python, Go or static app) after its directory, as Dokku and Piku
// name an app after its remote: "" when the descriptor names the app, or
// when it cannot be read (the server then says what is wrong with it).
func nameFromDir(dir string, notes io.Writer) (string, error) {
	desc, err := deploy.ReadDescriptor(dir)
	if err != nil || desc.Name != "" {
		return "", nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("name the app: %w", err)
	}
	name := strings.ToLower(filepath.Base(abs))
	if !deploy.ValidName(name) {
		return "", fmt.Errorf("the app has no name: no \"name\" in package.json or flock.json, and the directory's name %q "+
			"is not a DNS label (lower-case letters, digits and '-'); name it with --app NAME or \"name\" in flock.json", filepath.Base(abs))
	}
	fmt.Fprintf(notes, "-----> No name in package.json or flock.json: the app is named after its directory, %s (--app NAME to choose)\n", name)
	return name, nil
}

func addClientCommands(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.String("api-url", envOr("FLOCK_API_URL", "http://127.0.0.1:8080"), "Flock API (env FLOCK_API_URL)")
	pf.String("token", envOr("FLOCK_TOKEN", ""), "API token; default <data-dir>/token (env FLOCK_TOKEN)")

	root.AddCommand(deployCommand(), appsCommand(), scaleCommand(),
		actionCommand("sleep", "Put an app to sleep until its next request", "is asleep"),
		actionCommand("wake", "Wake a sleeping app", "is waking"),
		logsCommand(), releasesCommand(), rollbackCommand(), destroyCommand())
	root.AddCommand(configCommands()...) // client_config.go
}

// deployCommand is `flock deploy`.
func deployCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy [DIR]",
		Short: "Build and deploy a directory; streams the build log and prints the app's URL",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", dir)
			}
			c := newClient(cmd)
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(builder.Pack(dir, pw)) }()
			q := url.Values{}
			app, _ := cmd.Flags().GetString("app")
			if app == "" {
				named, err := nameFromDir(dir, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				app = named
			}
			if app != "" {
				q.Set("app", app)
			}
			resp, err := c.do(http.MethodPost, "/api/v1/deploys?"+q.Encode(), pr, "application/gzip")
			if err != nil {
				return err
			}
			return stream(resp, cmd.OutOrStdout())
		},
	}
	cmd.Flags().String("app", "", `app name (default: "name" in package.json or flock.json, else the directory's name)`)
	return cmd
}

// appsCommand is `flock apps`.
func appsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "List apps: name, state, instances healthy/desired, release, URL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			var apps []deploy.App
			if err := c.getJSON("/api/v1/apps", &apps); err != nil {
				return err
			}
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				b, err := json.MarshalIndent(apps, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), escapeC1(string(b)))
				return err
			}
			return printApps(cmd.OutOrStdout(), apps, time.Now())
		},
	}
	cmd.Flags().Bool("json", false, "print JSON")
	return cmd
}

// scaleCommand is `flock scale`.
func scaleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scale APP N | scale APP web=N worker=M …",
		Short: "Run N instances of an app (0 stops it), or N of each process type",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := args[0]
			type step struct {
				process string
				n       int
			}
			var steps []step
			for _, a := range args[1:] {
				process, count, named := strings.Cut(a, "=")
				if !named {
					process, count = "web", a
				}
				n, err := strconv.Atoi(count)
				if err != nil || n < 0 || process == "" || (!named && len(args) > 2) {
					return fmt.Errorf("want N, or TYPE=N for each process type (web=2 worker=1); N a whole number ≥ 0, not %q", a)
				}
				steps = append(steps, step{process, n})
			}
			c := newClient(cmd)
			for _, st := range steps {
				body := map[string]any{"instances": st.n}
				if st.process != "web" {
					body["process"] = st.process
				}
				if err := c.postJSON("/api/v1/apps/"+url.PathEscape(app)+"/scale", body); err != nil {
					return err
				}
				if st.process == "web" {
					fmt.Fprintf(cmd.OutOrStdout(), "%s scaled to %d\n", app, st.n)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s scaled to %d\n", app, st.process, st.n)
				}
			}
			return nil
		},
	}
	// "flock scale web -1" reads as a flag: say what is wrong.
	cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w; N must be a whole number ≥ 0", err)
	})
	return cmd
}

// actionCommand is a command that POSTs to an app's action route
// (sleep, wake) and says what it did.
func actionCommand(name, short, done string) *cobra.Command {
	return &cobra.Command{
		Use: name + " APP", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			if err := c.postJSON("/api/v1/apps/"+url.PathEscape(args[0])+"/"+name, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", args[0], done)
			return nil
		},
	}
}

// logsCommand is `flock logs`.
func logsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use: "logs APP", Short: "Print an app's output", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			path := "/api/v1/apps/" + url.PathEscape(args[0]) + "/logs"
			if f, _ := cmd.Flags().GetBool("follow"); f {
				path += "?follow=1"
			}
			resp, err := c.do(http.MethodGet, path, nil, "")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.Copy(cmd.OutOrStdout(), newCleanReader(resp.Body)) // an app's output: no escapes
			return err
		},
	}
	cmd.Flags().BoolP("follow", "f", false, "keep printing new output")
	return cmd
}

// releasesCommand is `flock releases`.
func releasesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use: "releases APP", Short: "List an app's deploys and releases", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			var out struct {
				Releases []deploy.Release `json:"releases"`
				Deploys  []deploy.Rollout `json:"deploys"`
			}
			if err := c.getJSON("/api/v1/apps/"+url.PathEscape(args[0])+"/releases", &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEPLOY\tRELEASE\tSTATUS\tTRIGGER\tCOMMIT\tDURATION\tERROR")
			for _, d := range out.Deploys {
				dur := "-"
				if d.StartedAt != nil && d.FinishedAt != nil {
					dur = d.FinishedAt.Sub(*d.StartedAt).Round(time.Millisecond).String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(d.ID), clean(d.Release), clean(string(d.Status)), clean(d.Trigger), clean(short(d.Commit)), dur, clean(d.Error))
			}
			return tw.Flush()
		},
	}
	return cmd
}

// rollbackCommand is `flock rollback`.
func rollbackCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use: "rollback APP [RELEASE]", Short: "Run an earlier release again, without building", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			rel := ""
			if len(args) == 2 {
				rel = args[1]
			}
			b, _ := json.Marshal(map[string]string{"release": rel})
			resp, err := c.do(http.MethodPost, "/api/v1/apps/"+url.PathEscape(args[0])+"/rollback", bytes.NewReader(b), "application/json")
			if err != nil {
				return err
			}
			return stream(resp, cmd.OutOrStdout())
		},
	}
	return cmd
}

// destroyCommand is `flock destroy`.
func destroyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use: "destroy APP", Short: "Stop an app and delete it with its releases", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			resp, err := c.do(http.MethodDelete, "/api/v1/apps/"+url.PathEscape(args[0]), nil, "")
			if err != nil {
				return err
			}
			resp.Body.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "%s destroyed\n", args[0])
			return nil
		},
	}
	return cmd
}

func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}
