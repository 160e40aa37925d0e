package builder_test

import (
	"github.com/flock-paas/flock/builder"
	"github.com/flock-paas/flock/deploy"
)

// The builder package imports nothing of Flock; this guard, in an external
// test package, keeps *Builder in step with the interface deploy declares.
var _ deploy.Builder = (*builder.Builder)(nil)
