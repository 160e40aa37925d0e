// Package hap holds what HAProxy and the rest of Flock must agree on: the
// name of an app's backend, the header that names the app a request is
// for, the one parser of HAProxy's stats CSV (stats.go) and the client of
// its runtime API on the master socket (runtime.go). The router writes
// haproxy.cfg and drives HAProxy through Runtime; the scaler reads backends
// back from the stats and the waker reads the header. It
// imports nothing of Flock, so scaler and backup may import it without
// importing the router.
package hap

// BackendPrefix starts the name of every app's backend. App names are DNS
// labels, so they never hold "_" and never collide with be_default.
const BackendPrefix = "app_"

// BackendName is the name of app's backend: "app_<app>".
func BackendName(app string) string { return BackendPrefix + app }

// AppHeader names the app a request is for. HAProxy sets it on every
// request it routes to an app (instances and the waker alike), after
// deleting any the client sent.
const AppHeader = "X-Flock-App"
