package scaler

import "github.com/prometheus/client_golang/prometheus"

// requestsDesc describes the one metric the scaler serves. HAProxy's own
// counters cannot be served as they are: a reload zeroes them and the
// stats of every worker are summed, so the scaler's sum of increases is
// the counter that only goes up while Flock runs. Rates are PromQL's job:
// rate(flock_app_requests_total[1m]).
var requestsDesc = prometheus.NewDesc("flock_app_requests_total",
	"Requests (HTTP requests, or TCP sessions when more) HAProxy routed to the app since Flock started, as the scaler reads them each tick.",
	[]string{"app"}, nil)

// Describe sends the scaler's metric: the Scaler is a prometheus.Collector.
func (s *Scaler) Describe(ch chan<- *prometheus.Desc) { ch <- requestsDesc }

// Collect sends each known app's request count. A destroyed app's series
// goes at the next tick, when the scaler forgets the app.
func (s *Scaler) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, st := range s.apps {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(st.requests), name)
	}
}

var _ prometheus.Collector = (*Scaler)(nil)
