package builder

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// nodePackage is the part of package.json the build needs.
type nodePackage struct {
	Name            string         `json:"name"`
	Version         string         `json:"version"`
	Main            string         `json:"main"`
	RawScripts      map[string]any `json:"scripts"`
	Dependencies    map[string]any `json:"dependencies"`
	DevDependencies map[string]any `json:"devDependencies"`
	Engines         map[string]any `json:"engines"`
	Config          map[string]any `json:"config"`
	PackageManager  string         `json:"packageManager"`

	scripts map[string]string // the string-valued scripts only
}

// script returns the script called name, "" when there is none.
func (p *nodePackage) script(name string) string { return p.scripts[name] }

// nodeBuild is one Node build in a work tree: the package, the package
// manager its lockfile names, and the node that runs it.
type nodeBuild struct {
	b *Builder
	*job
	pkg     nodePackage
	node    string // "v20.20.2"
	manager string // "npm", "yarn" or "pnpm"
	lock    string // the lockfile's name, "" without one
}

// buildNode builds a Node app the way Heroku's Node.js buildpack does:
// heroku-prebuild, install with devDependencies, the app's own install
// scripts, heroku-postbuild (or build), prune devDependencies,
// heroku-cleanup. It returns the start command: the start script run as
// npm would run it but without an npm process, else "node <main>".
func (b *Builder) buildNode(ctx context.Context, j *job) (command, shown string, err error) {
	lw := j.lw
	data, err := j.root.ReadFile("package.json")
	if err != nil {
		return "", "", fmt.Errorf("read package.json: %w", err)
	}
	nb := &nodeBuild{b: b, job: j}
	if err := json.Unmarshal(data, &nb.pkg); err != nil {
		return "", "", fmt.Errorf("package.json is not valid JSON: %w", err)
	}
	nb.pkg.scripts = map[string]string{}
	for k, v := range nb.pkg.RawScripts {
		if s, ok := v.(string); ok && strings.TrimSpace(s) != "" {
			nb.pkg.scripts[k] = s
		}
	}
	nb.node, err = output(ctx, "node", "--version")
	if err != nil {
		return "", "", fmt.Errorf("node is not installed on this machine (needed to build a Node app): %w", err)
	}
	lw.printf("-----> Node app detected (node %s)", nb.node)
	nb.checkEngines()
	nb.manager, nb.lock = detectManager(j.root, nb.pkg.PackageManager)

	if err := nb.runScript(ctx, "heroku-prebuild"); err != nil {
		return "", "", err
	}
	if err := nb.install(ctx); err != nil {
		return "", "", err
	}
	build := "heroku-postbuild"
	if nb.pkg.script(build) == "" {
		build = "build"
	}
	if err := nb.runScript(ctx, build); err != nil {
		return "", "", err
	}
	if err := nb.prune(ctx); err != nil {
		return "", "", err
	}
	if err := nb.runScript(ctx, "heroku-cleanup"); err != nil {
		return "", "", err
	}
	command = nb.startCommand()
	shown = command
	if start := nb.pkg.script("start"); start != "" {
		shown = "npm start (" + oneLine(start) + "), run without npm"
	}
	return command, shown, nil
}

// checkEngines warns when package.json asks for a node that is not the
// one this machine runs the app with (Flock does not install others).
func (nb *nodeBuild) checkEngines() {
	want, _ := nb.pkg.Engines["node"].(string)
	if strings.TrimSpace(want) == "" {
		return
	}
	c, err := semver.NewConstraint(want)
	if err != nil {
		nb.lw.printf(" !     Warning: package.json engines.node %q is not a version range Flock understands; the app runs with node %s", want, nb.node)
		return
	}
	v, err := semver.NewVersion(strings.TrimPrefix(nb.node, "v"))
	if err != nil || !c.Check(v) {
		nb.lw.printf(" !     Warning: package.json engines.node is %q, but this machine runs node %s; the app runs with node %s", want, nb.node, nb.node)
	}
}

// detectManager names the package manager the lockfile belongs to, as
// Heroku's buildpack does: yarn.lock → yarn, pnpm-lock.yaml → pnpm, else
// npm (with npm-shrinkwrap.json or package-lock.json when present).
func detectManager(tree *os.Root, packageManager string) (manager, lock string) {
	switch {
	case has(tree, "yarn.lock"):
		return "yarn", "yarn.lock"
	case has(tree, "pnpm-lock.yaml"):
		return "pnpm", "pnpm-lock.yaml"
	}
	for _, name := range []string{"npm-shrinkwrap.json", "package-lock.json"} {
		if has(tree, name) {
			return "npm", name
		}
	}
	if m, _, _ := strings.Cut(packageManager, "@"); m == "yarn" || m == "pnpm" {
		return m, ""
	}
	return "npm", ""
}

// npmEnv keeps npm quiet and from phoning home in build logs.
var npmEnv = []string{"npm_config_update_notifier=false", "npm_config_fund=false",
	"npm_config_audit=false", "npm_config_progress=false", "COREPACK_ENABLE_DOWNLOAD_PROMPT=0",
	// the yarn and pnpm versions this corepack knows: newer ones are signed
	// with keys an older corepack (Node 20's) cannot check.
	"COREPACK_DEFAULT_TO_LATEST=0"}

// install puts node_modules in place with devDependencies. With an npm
// lockfile the tree is restored from the build cache when the lockfile
// (and node) is unchanged; the app's own install scripts still run then,
// so a "postinstall" build is never skipped.
func (nb *nodeBuild) install(ctx context.Context) error {
	hasDeps := len(nb.pkg.Dependencies)+len(nb.pkg.DevDependencies) > 0
	if nb.lock == "" && !hasDeps {
		nb.lw.printf("-----> No dependencies in package.json: skipping %s install", nb.manager)
		return nb.rootInstallScripts(ctx)
	}
	env := append([]string{"NODE_ENV=production"}, npmEnv...)
	switch nb.manager {
	case "yarn":
		nb.lw.printf("-----> Installing dependencies with yarn (%s)", orNone(nb.lock))
		args := []string{"yarn", "install", "--production=false", "--non-interactive"}
		if nb.lock != "" {
			args = append(args, "--frozen-lockfile")
		}
		return nb.run(ctx, env, "corepack", args...)
	case "pnpm":
		nb.lw.printf("-----> Installing dependencies with pnpm (%s)", orNone(nb.lock))
		args := []string{"pnpm", "install", "--prod=false"}
		if nb.lock != "" {
			args = append(args, "--frozen-lockfile")
		}
		return nb.run(ctx, env, "corepack", args...)
	}
	if nb.lock == "" {
		nb.lw.printf("-----> Installing dependencies with npm install (no lockfile: commit package-lock.json for repeatable, cached builds)")
		return nb.run(ctx, env, "npm", "install", "--include=dev", "--no-audit", "--no-fund")
	}
	key, err := nodeCacheKey(nb.root, nb.lock, nb.node, "full")
	if err != nil {
		return err
	}
	hit, err := nb.restore(ctx, key)
	if err != nil {
		return err
	}
	if hit {
		nb.lw.printf("-----> Restored node_modules from the build cache (%s unchanged)", nb.lock)
		return nb.rootInstallScripts(ctx)
	}
	nb.lw.printf("-----> Installing dependencies with npm ci (%s)", nb.lock)
	if err := nb.run(ctx, env, "npm", "ci", "--include=dev", "--no-audit", "--no-fund"); err != nil {
		return err
	}
	nb.cache(ctx, key)
	return nil
}

// rootInstallScripts runs the app's own install lifecycle scripts, in
// npm's order, when no package manager ran them.
func (nb *nodeBuild) rootInstallScripts(ctx context.Context) error {
	for _, name := range []string{"preinstall", "install", "postinstall", "prepare"} {
		if err := nb.runScript(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// prune removes devDependencies from node_modules before the slug is
// written. With an npm lockfile the pruned tree comes from the cache too.
func (nb *nodeBuild) prune(ctx context.Context) error {
	if len(nb.pkg.DevDependencies) == 0 || !nb.has("node_modules") {
		return nil
	}
	nb.lw.printf("-----> Pruning devDependencies")
	switch nb.manager {
	case "yarn":
		return nb.run(ctx, npmEnv, "corepack", "yarn", "install", "--production=true",
			"--frozen-lockfile", "--ignore-scripts", "--prefer-offline", "--non-interactive")
	case "pnpm":
		return nb.run(ctx, npmEnv, "corepack", "pnpm", "prune", "--prod", "--ignore-scripts")
	}
	if nb.lock == "" {
		return nb.run(ctx, npmEnv, "npm", "prune", "--omit=dev", "--no-audit", "--no-fund")
	}
	key, err := nodeCacheKey(nb.root, nb.lock, nb.node, "prod")
	if err != nil {
		return err
	}
	if hit, err := nb.restore(ctx, key); err != nil || hit {
		return err
	}
	if err := nb.run(ctx, npmEnv, "npm", "prune", "--omit=dev", "--no-audit", "--no-fund"); err != nil {
		return err
	}
	nb.cache(ctx, key)
	return nil
}

// restore puts the cached node_modules for key in the tree and reports
// whether there was one: the app's own cache when the build runs in a box.
func (nb *nodeBuild) restore(ctx context.Context, key string) (bool, error) {
	if nb.box != nil {
		return nb.box.restoreNodeModules(ctx, nb.lw, key, nb.tree)
	}
	return nb.b.restoreNodeModules(key, nb.tree)
}

// cache stores node_modules under key; a cache that cannot be written
// costs the next build time, not this build its result.
func (nb *nodeBuild) cache(ctx context.Context, key string) {
	var err error
	if nb.box != nil {
		err = nb.box.storeNodeModules(ctx, nb.lw, key, nb.tree)
	} else {
		err = nb.b.storeNodeModules(key, nb.tree)
	}
	if err != nil {
		nb.lw.printf("       (could not cache node_modules: %v)", err)
		nb.b.logger.Warn("cache node_modules", "err", err)
	}
}

// runScript runs the package.json script called name, if there is one, as
// npm runs scripts: sh -c in the app's folder, node_modules/.bin first on
// PATH, the npm_* variables set; but without an npm process (250 ms less).
func (nb *nodeBuild) runScript(ctx context.Context, name string) error {
	script := nb.pkg.script(name)
	if script == "" {
		return nil
	}
	nb.lw.printf("-----> Running %s: %s", name, oneLine(script))
	env := []string{
		"PATH=" + filepath.Join(nb.tree, "node_modules", ".bin") + string(os.PathListSeparator) + nb.box.PATH(),
		"NODE_ENV=production",
	}
	for _, kv := range nb.scriptVars(name) {
		env = append(env, kv[0]+"="+kv[1])
	}
	env = append(env, npmEnv...)
	if err := nb.run(ctx, env, "sh", "-c", script); err != nil {
		return fmt.Errorf("%s script (%s) failed: %w", name, oneLine(script), err)
	}
	return nil
}

// configKeyRE keeps what a shell variable name may hold, as npm does for
// npm_package_config_* names.
var configKeyRE = regexp.MustCompile(`[^A-Za-z0-9_]`)

// scriptVars are the npm_* variables npm (7 and later) gives a script:
// the package's name, version, path and config, and the lifecycle event.
func (nb *nodeBuild) scriptVars(event string) [][2]string {
	vars := [][2]string{
		{"npm_package_name", nb.pkg.Name},
		{"npm_package_version", nb.pkg.Version},
		{"npm_lifecycle_event", event},
		{"npm_lifecycle_script", nb.pkg.script(event)},
	}
	keys := make([]string, 0, len(nb.pkg.Config))
	for k := range nb.pkg.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var v string
		switch c := nb.pkg.Config[k].(type) {
		case string:
			v = c
		case float64, bool:
			v = fmt.Sprint(c)
		default:
			continue
		}
		vars = append(vars, [2]string{"npm_package_config_" + configKeyRE.ReplaceAllString(k, "_"), v})
	}
	return vars
}

// startCommand is what runs the app. A start script runs as `npm start`
// would run it (prestart first, node_modules/.bin on PATH, the npm_*
// variables set) with no npm process in front: sh execs the script's
// command when it is a plain one. Without a start script: node <main>
// (main defaults to server.js), as npm start does.
func (nb *nodeBuild) startCommand() string {
	start := nb.pkg.script("start")
	if start == "" {
		main := nb.pkg.Main
		if main == "" {
			main = "server.js"
		}
		clean := filepath.Clean(main)
		if !filepath.IsLocal(clean) || (!nb.has(clean) && !nb.has(clean+".js")) {
			return "" // node resolves "main": "index" to index.js
		}
		return "node " + shellQuote(clean)
	}
	var sb strings.Builder
	sb.WriteString(`export PATH="$PWD/node_modules/.bin:$PATH" npm_package_json="$PWD/package.json"`)
	for _, kv := range nb.scriptVars("start") {
		sb.WriteString(" " + kv[0] + "=" + alwaysQuote(kv[1]))
	}
	sb.WriteString("; ")
	if pre := nb.pkg.script("prestart"); pre != "" {
		sb.WriteString("{ " + pre + "\n} && ")
	}
	if plainCommand(start) {
		sb.WriteString("exec ")
	}
	sb.WriteString(start)
	return sb.String()
}

// plainCommand reports whether s is one simple command (no shell
// operators, no leading VAR=value), so that `exec s` runs it in sh's place.
func plainCommand(s string) bool {
	if strings.ContainsAny(s, ";&|<>()`$\n\\'\"*?#~{}") {
		return false
	}
	first, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	return first != "" && !strings.Contains(first, "=") && first != "exec"
}

// alwaysQuote quotes s for sh in single quotes.
func alwaysQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func orNone(lock string) string {
	if lock == "" {
		return "no lockfile"
	}
	return lock
}
