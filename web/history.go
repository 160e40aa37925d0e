package web

import (
	"strconv"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// sample is one reading of an app: its request rate and instance count.
type sample struct {
	at   int64 // unix seconds
	rate float32
	inst int32
}

// ring keeps an app's last samples, oldest overwritten first.
type ring struct {
	s    []sample
	next int
	full bool
}

func (r *ring) push(v sample) {
	r.s[r.next] = v
	r.next++
	if r.next == len(r.s) {
		r.next, r.full = 0, true
	}
}

// ordered returns the samples oldest first.
func (r *ring) ordered() []sample {
	if !r.full {
		return append([]sample(nil), r.s[:r.next]...)
	}
	out := make([]sample, 0, len(r.s))
	out = append(out, r.s[r.next:]...)
	return append(out, r.s[:r.next]...)
}

// history is the last hour of every app's traffic and instances, for the
// sparklines and charts. The platform keeps only the present; this is the
// dashboard's own memory, lost on restart.
type history struct {
	mu   sync.RWMutex
	size int
	apps map[string]*ring
}

func newHistory(size int) *history {
	if size < 2 {
		size = 2
	}
	return &history{size: size, apps: make(map[string]*ring)}
}

// record adds a sample for every app and forgets apps that are gone.
func (h *history) record(now time.Time, apps []deploy.App) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[string]bool, len(apps))
	for _, a := range apps {
		seen[a.Name] = true
		r := h.apps[a.Name]
		if r == nil {
			r = &ring{s: make([]sample, h.size)}
			h.apps[a.Name] = r
		}
		r.push(sample{at: now.Unix(), rate: float32(a.RequestRate), inst: int32(len(a.Instances))})
	}
	for name := range h.apps {
		if !seen[name] {
			delete(h.apps, name)
		}
	}
}

func (h *history) series(app string) []sample {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r := h.apps[app]
	if r == nil {
		return nil
	}
	return r.ordered()
}

// line is a polyline's points in an SVG viewBox of w×h.
type line struct {
	Points string
	Max    float64
}

// plot places the values of samples (picked by val) over the hour before
// now, in at most buckets points (each the mean of its bucket), scaled so
// the largest value reaches the top.
func plot(ss []sample, now time.Time, w, h float64, buckets int, val func(sample) float64) line {
	if len(ss) == 0 {
		return line{}
	}
	start := now.Add(-time.Hour).Unix()
	span := float64(time.Hour / time.Second)
	sums := make([]float64, buckets)
	counts := make([]int, buckets)
	for _, s := range ss {
		if s.at < start {
			continue
		}
		b := int(float64(s.at-start) / span * float64(buckets))
		if b >= buckets {
			b = buckets - 1
		}
		sums[b] += val(s)
		counts[b]++
	}
	max := 0.0
	for i := range sums {
		if counts[i] > 0 {
			sums[i] /= float64(counts[i])
			if sums[i] > max {
				max = sums[i]
			}
		}
	}
	scale := max
	if scale <= 0 {
		scale = 1
	}
	buf := make([]byte, 0, buckets*10)
	for i := range sums {
		if counts[i] == 0 {
			continue
		}
		x := (float64(i) + 0.5) / float64(buckets) * w
		y := h - sums[i]/scale*(h-1) - 0.5
		if len(buf) > 0 {
			buf = append(buf, ' ')
		}
		buf = strconv.AppendFloat(buf, x, 'f', 1, 64)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, y, 'f', 1, 64)
	}
	return line{Points: string(buf), Max: max}
}

func rateOf(s sample) float64 { return float64(s.rate) }
func instOf(s sample) float64 { return float64(s.inst) }
