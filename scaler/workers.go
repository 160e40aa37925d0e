package scaler

import (
	"fmt"
	"slices"

	"github.com/flock-paas/flock/router/hap"
)

// counters are one backend's request counters in one HAProxy worker.
type counters struct {
	pid          int
	stot, reqTot int64
	// missed counts the ticks since the worker was last listed (see
	// countRequests).
	missed int
}

// keepMissing is how many ticks a worker that is not listed is still
// remembered: an old worker whose stats could not be read for a tick (it
// was busy, or the master socket timed out) and that is listed again
// must not count as new, which would count its requests twice. Pids are
// not reused that fast.
const keepMissing = 3

// workerBackends are one worker's BACKEND counters, by proxy name.
type workerBackends struct {
	pid      int
	backends map[string]counters
}

// parseWorkers parses every worker's dump once. It returns the rows
// merged over the workers (hap.Merge), which the scaler decides from
// (sessions open in an old worker are activity), and each worker's
// BACKEND counters, which it counts requests from: summed, the counters
// drop when an old worker exits, and the requests of the tick would be
// lost.
func parseWorkers(ws []hap.WorkerStats) ([]Row, []workerBackends, error) {
	each := make([][]Row, 0, len(ws))
	per := make([]workerBackends, 0, len(ws))
	for _, w := range ws {
		rows, err := hap.ParseBytes(w.CSV)
		if err != nil {
			return nil, nil, fmt.Errorf("HAProxy worker %d: %w", w.Pid, err)
		}
		wb := workerBackends{pid: w.Pid, backends: map[string]counters{}}
		for _, r := range rows {
			if r.Server == Backend {
				wb.backends[r.Proxy] = counters{pid: w.Pid, stot: r.Stot, reqTot: r.ReqTot}
			}
		}
		each, per = append(each, rows), append(per, wb)
	}
	return hap.Merge(each...), per, nil
}

// backendCounters appends to buf the counters of one backend in each
// worker that has it (an old worker lacks a backend added since).
func backendCounters(buf []counters, per []workerBackends, backend string) []counters {
	for _, w := range per {
		if c, ok := w.backends[backend]; ok {
			buf = append(buf, c)
		}
	}
	return buf
}

// countRequests returns the requests the backend received since the last
// tick, and remembers now's counters for the next one. Each worker counts
// alone: one seen before adds its increase (a counter that went down on
// the same pid is a new baseline, and adds 0); a new one adds all its
// counters, since a worker starts from 0 at a reload. A worker no longer
// listed has most likely exited, its requests counted already; it is
// remembered for keepMissing ticks in case it was only not read. Of stot
// and req_tot the larger increase counts: HTTP requests on keep-alive
// connections, or TCP sessions.
func (st *appState) countRequests(now []counters) int64 {
	var n int64
	for _, c := range now {
		i := slices.IndexFunc(st.workers, func(p counters) bool { return p.pid == c.pid })
		switch {
		case i < 0:
			n += max(c.stot, c.reqTot)
		case c.stot >= st.workers[i].stot && c.reqTot >= st.workers[i].reqTot:
			n += max(c.stot-st.workers[i].stot, c.reqTot-st.workers[i].reqTot)
		}
	}
	// The missing ones kept, then now's, in the same array: no
	// allocation per tick once it has grown.
	k := 0
	for _, p := range st.workers {
		listed := slices.ContainsFunc(now, func(c counters) bool { return c.pid == p.pid })
		if !listed && p.missed < keepMissing {
			p.missed++
			st.workers[k] = p
			k++
		}
	}
	st.workers = append(st.workers[:k], now...)
	return n
}
