package scaler

import "github.com/flock-paas/flock/router/hap"

// The scaler reads HAProxy's stats through router/hap, the one parser of
// them; these names keep its code short.
type Row = hap.Row

// Names of HAProxy's pseudo servers (hap.Frontend, hap.Backend).
const (
	Frontend = hap.Frontend
	Backend  = hap.Backend
)
