package scaler

import (
	"time"

	"github.com/spf13/pflag"
)

// AddFlags registers the scaler's tuning flags on fs, writing into c, with
// their defaults (docs/scaling.md explains them). The lead's cmd/flock
// may map FLOCK_<NAME> environment variables onto them.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&c.Every, "scale-every", 10*time.Second, "how often the scaler reads HAProxy's stats")
	fs.IntVar(&c.TargetSessions, "target-sessions", 10, "current sessions per instance that count as overloaded")
	fs.Float64Var(&c.TargetRate, "target-rate", 0, "requests per second per instance that count as overloaded (0: off)")
	fs.Float64Var(&c.UpRatio, "scale-up-ratio", 0.9, "add instances when at least this share of them is overloaded")
	fs.Float64Var(&c.DownRatio, "scale-down-ratio", 0.5, "remove instances when at most this share of them is overloaded")
	fs.IntVar(&c.Step, "scale-step", 2, "instances added or removed at a time")
	fs.DurationVar(&c.Cooldown, "scale-cooldown", time.Minute, "pause after any change of an app's instance count")
}
