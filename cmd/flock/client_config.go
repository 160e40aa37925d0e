package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/flock-paas/flock/deploy"
)

// configCommands are flock create, flock config and flock domains
// (docs/config.md, docs/domains.md).
func configCommands() []*cobra.Command {
	return []*cobra.Command{createCmd(), configCmd(), domainsCmd()}
}

func createCmd() *cobra.Command {
	return &cobra.Command{
		Use: "create APP", Short: "Create an empty app, to set config vars and domains before its first deploy", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			if err := c.postJSON("/api/v1/apps", map[string]string{"name": args[0]}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s created: set its config with flock config set %s KEY=VALUE, then deploy it (flock deploy --app %s, or git push)\n",
				args[0], args[0], args[0])
			return nil
		},
	}
}

// configResult is PATCH /api/v1/apps/<app>/config's answer.
type configResult struct {
	Release    string   `json:"release"`
	ConfigKeys []string `json:"configKeys"`
	Log        string   `json:"log"`
}

func configCmd() *cobra.Command {
	show := &cobra.Command{
		Use:   "config APP [--json] | config set APP KEY=VALUE… | config unset APP KEY…",
		Short: "Show an app's config vars, or set and unset them (each change rolls out a new release)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var cfg map[string]string
			if err := newClient(cmd).getJSON(appPath(args[0], "config"), &cfg); err != nil {
				return err
			}
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				b, err := json.MarshalIndent(cfg, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return err
			}
			for _, k := range deploy.ConfigKeys(cfg) {
				fmt.Fprintf(cmd.OutOrStdout(), "%s=%s\n", k, shellSafe(cfg[k]))
			}
			return nil
		},
	}
	show.Flags().Bool("json", false, "print JSON")
	set := &cobra.Command{
		Use: "set APP KEY=VALUE…", Short: "Set config vars; the app rolls out a new release with them", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			patch := map[string]*string{}
			for _, a := range args[1:] {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return fmt.Errorf("want KEY=VALUE, not %q", strings.SplitN(a, "=", 2)[0])
				}
				patch[k] = &v
			}
			return patchConfig(cmd, args[0], patch)
		},
	}
	unset := &cobra.Command{
		Use: "unset APP KEY…", Short: "Unset config vars; the app rolls out a new release without them", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			patch := map[string]*string{}
			for _, k := range args[1:] {
				patch[k] = nil
			}
			return patchConfig(cmd, args[0], patch)
		},
	}
	show.AddCommand(set, unset)
	return show
}

// patchConfig sends a change and tells what became of it: the release
// that carries it, or that it waits for the first deploy.
func patchConfig(cmd *cobra.Command, app string, patch map[string]*string) error {
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	resp, err := newClient(cmd).do(http.MethodPatch, appPath(app, "config"), bytes.NewReader(body), "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r configResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprint(out, cleanText(r.Log))
	if r.Release != "" {
		fmt.Fprintf(out, "%s: %s is live with config %s\n", app, r.Release, keyList(r.ConfigKeys))
	} else {
		fmt.Fprintf(out, "%s: config %s\n", app, keyList(r.ConfigKeys))
	}
	return nil
}

func keyList(keys []string) string {
	if len(keys) == 0 {
		return "(none)"
	}
	return strings.Join(keys, ", ")
}

// shellSafe prints a value as is when it is plain text, else quoted, so
// that a value never moves the terminal's cursor or writes escapes.
func shellSafe(v string) string {
	if strconv.CanBackquote(v) && !strings.ContainsAny(v, "`") {
		return v
	}
	return strconv.Quote(v)
}

func appPath(app string, rest ...string) string {
	p := "/api/v1/apps/" + url.PathEscape(app)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

func domainsCmd() *cobra.Command {
	list := &cobra.Command{
		Use:   "domains APP | domains add APP HOST | domains remove APP HOST",
		Short: "List an app's domains, or add and remove them (they route at once, no deploy)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v struct {
				Domains []deploy.Domain `json:"domains"`
			}
			if err := newClient(cmd).getJSON(appPath(args[0], "domains"), &v); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "HOST\tFROM")
			for _, d := range v.Domains {
				fmt.Fprintf(tw, "%s\t%s\n", clean(d.Host), clean(d.Source))
			}
			return tw.Flush()
		},
	}
	add := &cobra.Command{
		Use: "add APP HOST", Short: "Route HOST to the app, at once", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := newClient(cmd).postJSON(appPath(args[0], "domains"), map[string]string{"host": args[1]}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s now answers at %s\n", args[0], deploy.NormalizeHost(args[1]))
			return nil
		},
	}
	remove := &cobra.Command{
		Use: "remove APP HOST", Short: "Stop routing HOST to the app", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := newClient(cmd).do(http.MethodDelete, appPath(args[0], "domains", args[1]), nil, "")
			if err != nil {
				return err
			}
			resp.Body.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "%s no longer answers at %s\n", args[0], deploy.NormalizeHost(args[1]))
			return nil
		},
	}
	list.AddCommand(add, remove)
	return list
}
