package backup

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics show where cold-start time goes, per app: detect (first request
// → wake issued), scale (the Wake call), healthy (wake → first instance
// passing its check), first_byte (proxy start → the instance's response
// headers), and the total a held request waited.
type metrics struct {
	phase    *prometheus.HistogramVec
	total    *prometheus.HistogramVec
	held     *prometheus.CounterVec
	rejected *prometheus.CounterVec
	timedOut *prometheus.CounterVec
	wakes    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := prometheus.ExponentialBuckets(0.001, 2, 17) // 1ms … 65s
	m := &metrics{
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flock_waker_phase_seconds", Buckets: buckets,
			Help: "Duration of each wake phase per app: detect (request → wake), scale (the wake call), start (→ first instance running), healthy (→ its check passes), first_byte (proxy → first response byte).",
		}, []string{"app", "phase"}),
		total: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flock_waker_cold_start_seconds", Buckets: buckets,
			Help: "Time a held request waited from arrival to the app's first response byte.",
		}, []string{"app"}),
		held: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flock_waker_held_requests_total",
			Help: "Requests held while their app woke or had no healthy instance.",
		}, []string{"app"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flock_waker_rejected_requests_total",
			Help: "Requests answered 503 at once (reason: queue_full, stopped, failed, crashed).",
		}, []string{"app", "reason"}),
		timedOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flock_waker_timed_out_requests_total",
			Help: "Held requests answered 504 because their app did not wake in time.",
		}, []string{"app"}),
		wakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flock_waker_wakes_total",
			Help: "Wake calls the waker made.",
		}, []string{"app"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.phase, m.total, m.held, m.rejected, m.timedOut, m.wakes} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return m, nil
}

// forget deletes every series of the app.
func (m *metrics) forget(app string) {
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{m.phase, m.total, m.held, m.rejected, m.timedOut, m.wakes} {
		v.DeletePartialMatch(prometheus.Labels{"app": app})
	}
}
