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
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("%s %s: %s %s", method, path, resp.Status, strings.TrimSpace(string(b)))
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
// the same for "rollback").
func stream(resp *http.Response, out io.Writer) error {
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	last := ""
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(out, line)
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
		if why, ok := strings.CutPrefix(last, op+" failed: "); ok {
			return errors.New(why)
		}
	}
	return errors.New("the deploy log ended without an outcome (connection lost?)")
}

func addClientCommands(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.String("api-url", envOr("FLOCK_API_URL", "http://127.0.0.1:8080"), "Flock API (env FLOCK_API_URL)")
	pf.String("token", envOr("FLOCK_TOKEN", ""), "API token; default <data-dir>/token (env FLOCK_TOKEN)")

	deployCmd := &cobra.Command{
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
			if app, _ := cmd.Flags().GetString("app"); app != "" {
				q.Set("app", app)
			}
			resp, err := c.do(http.MethodPost, "/api/v1/deploys?"+q.Encode(), pr, "application/gzip")
			if err != nil {
				return err
			}
			return stream(resp, cmd.OutOrStdout())
		},
	}
	deployCmd.Flags().String("app", "", "app name (default: the descriptor's name)")

	appsCmd := &cobra.Command{
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
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(apps)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tINSTANCES\tRELEASE\tURL\tLAST REQUEST")
			for _, a := range apps {
				last := "-"
				if a.LastRequestAt != nil {
					last = time.Since(*a.LastRequestAt).Round(time.Second).String() + " ago"
				}
				state := string(a.State)
				if a.Error != "" {
					state += " (" + a.Error + ")"
				}
				for _, in := range a.Instances {
					if in.LastExit != "" { // restarted: say why, e.g. out of memory
						state += " (" + in.ID + " restarted after " + in.LastExit + ")"
						break
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\t%s\n", a.Name, state, a.HealthyCount(), a.Desired, a.Release, a.URL, last)
			}
			return tw.Flush()
		},
	}
	appsCmd.Flags().Bool("json", false, "print JSON")

	scaleCmd := &cobra.Command{
		Use: "scale APP N", Short: "Run N instances of an app (0 stops it)", Args: cobra.ExactArgs(2),

		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 0 {
				return fmt.Errorf("N must be a whole number ≥ 0, not %q", args[1])
			}
			c := newClient(cmd)
			if err := c.postJSON("/api/v1/apps/"+url.PathEscape(args[0])+"/scale", map[string]int{"instances": n}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s scaled to %d\n", args[0], n)
			return nil
		},
	}
	// "flock scale web -1" reads as a flag: say what is wrong.
	scaleCmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w; N must be a whole number ≥ 0", err)
	})
	action := func(name, short, done string) *cobra.Command {
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
	logsCmd := &cobra.Command{
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
			_, err = io.Copy(cmd.OutOrStdout(), resp.Body)
			return err
		},
	}
	logsCmd.Flags().BoolP("follow", "f", false, "keep printing new output")

	releasesCmd := &cobra.Command{
		Use: "releases APP", Short: "List an app's deploys and releases", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			var out struct {
				Releases []deploy.Release `json:"releases"`
				Deploys  []deploy.Deploy  `json:"deploys"`
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
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Release, d.Status, d.Trigger, short(d.Commit), dur, d.Error)
			}
			return tw.Flush()
		},
	}
	rollbackCmd := &cobra.Command{
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
	destroyCmd := &cobra.Command{
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
	root.AddCommand(deployCmd, appsCmd, scaleCmd,
		action("sleep", "Put an app to sleep until its next request", "is asleep"),
		action("wake", "Wake a sleeping app", "is waking"),
		logsCmd, releasesCmd, rollbackCmd, destroyCmd)
}

func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}
