package main

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/flock-paas/flock/deploy"
)

// openCmd is `flock open APP`: the app's URL in a browser, as `heroku open`
// does; printed instead where no browser can open (a server over ssh, a
// container, CI), so the command is useful everywhere.
func openCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "open APP",
		Short: "Open the app's URL in a browser (prints it when there is no browser)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !deploy.ValidName(name) {
				return fmt.Errorf("app name %q: must be a lower-case DNS label", name)
			}
			var a deploy.App
			if err := newClient(cmd).getJSON("/api/v1/apps/"+name, &a); err != nil {
				return err
			}
			u, err := appURL(a)
			if err != nil {
				return err
			}
			onlyPrint, _ := cmd.Flags().GetBool("print")
			return openURL(u, onlyPrint, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().BoolP("print", "p", false, "print the URL; do not start a browser")
	return cmd
}

// appURL returns the app's URL if it is a plain http(s) URL: it becomes
// an argument of another program, so nothing else (a file: URL, an
// option-like "-x") gets through.
func appURL(a deploy.App) (string, error) {
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("app %s has no http(s) URL (the API says %q)", a.Name, a.URL)
	}
	return u.String(), nil
}

// opener returns the program that opens a URL in the user's browser, or
// "" when there is none: no such program, or (outside macOS and Windows)
// no graphical session, where xdg-open would start a text browser or fail.
func opener() []string {
	var argv []string
	switch runtime.GOOS {
	case "darwin":
		argv = []string{"open"}
	case "windows":
		argv = []string{"rundll32", "url.dll,FileProtocolHandler"}
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return nil
		}
		argv = []string{"xdg-open"}
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		return nil
	}
	return argv
}

// openURL starts the browser on u, or prints u on out when there is no
// browser or it fails. The URL alone on stdout lets scripts use it:
// curl "$(flock open -p hello)".
func openURL(u string, onlyPrint bool, out, errOut io.Writer) error {
	argv := opener()
	if onlyPrint || argv == nil {
		_, err := fmt.Fprintln(out, u)
		return err
	}
	c := exec.Command(argv[0], append(argv[1:], u)...)
	// The opener may outlive this command (some xdg-open setups run the
	// browser in the foreground): no pipe of ours must hold it, so its
	// output goes to our stderr file itself, or nowhere.
	if f, ok := errOut.(*os.File); ok {
		c.Stderr = f
	}
	if err := c.Start(); err != nil {
		return printInstead(u, argv[0], err, out, errOut)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return printInstead(u, argv[0], err, out, errOut)
		}
	case <-time.After(openWait):
		// Still running: the browser has it.
	}
	fmt.Fprintf(errOut, "Opening %s\n", u)
	return nil
}

// openWait is how long openURL waits for the opener to fail before it
// takes the browser as started.
const openWait = 3 * time.Second

func printInstead(u, prog string, why error, out, errOut io.Writer) error {
	fmt.Fprintf(errOut, "could not start a browser (%s: %v); the URL:\n", prog, why)
	_, err := fmt.Fprintln(out, u)
	return err
}
