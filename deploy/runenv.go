package deploy

import "maps"

// runDefaults are set in every instance's environment unless the app's
// env sets them, as Heroku's buildpacks do: Node libraries (Express among
// them) leave development mode, and Python's print() reaches the log at
// once instead of waiting in a block buffer (stdout is a pipe, not a
// terminal). docs/descriptor.md lists them with what the schedulers add
// (PORT, PORT0…, HOST, FLOCK_APP, FLOCK_RELEASE, FLOCK_INSTANCE).
var runDefaults = map[string]string{
	"NODE_ENV":         "production",
	"PYTHONUNBUFFERED": "1",
}

// RunEnv is the environment a release runs with before the scheduler adds
// its own: the run defaults, overridden by the release's env.
func RunEnv(env map[string]string) map[string]string {
	out := maps.Clone(runDefaults)
	maps.Copy(out, env)
	return out
}
