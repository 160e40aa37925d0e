package builder

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// buildOutputs are the folders front-end tools build a site into, in the
// order they are looked for: Vite and most bundlers (dist), Create React
// App (build), Next.js's static export (out), Gatsby (public), Eleventy
// (_site).
var buildOutputs = []string{"dist", "build", "out", "public", "_site"}

// staticSite returns the start command of a static site, for a tree that
// no other start command applies to: the StaticServer serving the folder
// siteFolder finds. It returns "" when the tree holds no site.
func (b *Builder) staticSite(tree *os.Root, lw *lineWriter) (command, shown string, err error) {
	folder, err := siteFolder(tree)
	if folder == "" || err != nil {
		return "", "", err
	}
	where := "the source's root"
	if folder != "." {
		where = folder + "/"
	}
	lw.printf("-----> Static site detected: served by Flock (%s)", where)
	if len(b.static) == 0 {
		return "", "", errors.New("static sites are served by the flock binary, which only the embedded scheduler " +
			"(flock up --scheduler local) runs apps with; on Marathon, add a web server to the app and a Procfile " +
			"with a line \"web: <command>\", or set flock.cmd")
	}
	if has(tree, "package.json") && has(tree, "node_modules") {
		// Nothing runs the site's packages: they would only make the slug
		// larger (and be files the server must not show).
		lw.printf("-----> Removing node_modules: a static site needs no runtime")
		if err := tree.RemoveAll("node_modules"); err != nil {
			return "", "", fmt.Errorf("remove node_modules: %w", err)
		}
	}
	args := make([]string, 0, len(b.static)+2)
	for _, a := range b.static {
		args = append(args, shellQuote(a))
	}
	shown = "flock static"
	if folder != "." {
		args = append(args, "--dir", shellQuote(folder))
		shown += " --dir " + folder
	}
	// exec: the server is the instance's process and gets SIGTERM itself.
	return "exec " + strings.Join(args, " "), shown, nil
}

// siteFolder finds the folder to serve: with a Node build script, the
// first build output folder that holds an index.html; else the root when
// it holds one; else "".
func siteFolder(tree *os.Root) (string, error) {
	built, err := hasBuildScript(tree)
	if err != nil {
		return "", err
	}
	if built {
		for _, dir := range buildOutputs {
			if fi, err := tree.Lstat(dir); err == nil && fi.IsDir() && has(tree, dir+"/index.html") {
				return dir, nil
			}
		}
	}
	if has(tree, "index.html") {
		return ".", nil
	}
	return "", nil
}

// hasBuildScript reports whether package.json has a script the Node
// build runs as the app's build (build or heroku-postbuild).
func hasBuildScript(tree *os.Root) (bool, error) {
	data, err := tree.ReadFile("package.json")
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read package.json: %w", err)
	}
	var pkg struct {
		Scripts map[string]any `json:"scripts"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		return false, fmt.Errorf("package.json is not valid JSON: %w", err)
	}
	for _, name := range []string{"build", "heroku-postbuild"} {
		if s, ok := pkg.Scripts[name].(string); ok && strings.TrimSpace(s) != "" {
			return true, nil
		}
	}
	return false, nil
}
