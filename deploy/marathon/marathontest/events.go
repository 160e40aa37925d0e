package marathontest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// stream is one open /v2/events connection and what it asked for.
type stream struct {
	types map[string]bool // event_type filter (Marathon ≥1.3.7); empty: all
	heavy bool            // deployment events carry plan.original/target
}

// heavyFor reports whether a stream opened with query q gets heavy
// deployment events: before 1.7 by default, before 1.6 always (the 1.6
// changelog introduces ?plan-format=light; 1.7 makes light the default,
// 1.8 the only format).
func (s *Server) heavyFor(light bool) bool {
	var major, minor int
	fmt.Sscanf(s.opts.Version, "%d.%d", &major, &minor)
	v := major*1000 + minor
	switch {
	case v >= 1007:
		return false
	case v >= 1006:
		return !light
	}
	return true
}

// push sends an event to every stream that subscribed to its type, in the
// format the stream asked for. Caller holds s.mu.
func (s *Server) push(ev map[string]any) {
	typ := fmt.Sprint(ev["eventType"])
	var light, heavy []byte
	for c, st := range s.streams {
		if len(st.types) > 0 && !st.types[typ] {
			continue // HttpEventSSEHandle.subscribed
		}
		var b []byte
		if st.heavy && (typ == "deployment_info" || typ == "deployment_step_success") {
			if heavy == nil {
				heavy = frame(typ, s.withGroups(ev))
			}
			b = heavy
		} else {
			if light == nil {
				light = frame(typ, ev)
			}
			b = light
		}
		select {
		case c <- b:
		default: // a stuck reader misses events, as with Marathon
		}
	}
}

func frame(typ string, ev map[string]any) []byte {
	data, _ := json.Marshal(ev)
	return []byte(fmt.Sprintf("event: %s\ndata: %s\n\n", typ, data))
}

// withGroups adds the heavy plan's original and target: the root group
// with every app (event-bus.md before 1.7). Caller holds s.mu.
func (s *Server) withGroups(ev map[string]any) map[string]any {
	plan, _ := ev["plan"].(map[string]any)
	if plan == nil {
		return ev
	}
	apps := make([]any, 0, len(s.apps))
	for _, a := range s.apps {
		apps = append(apps, a)
	}
	root := map[string]any{"id": "/", "apps": apps, "groups": []any{}, "dependencies": []any{}, "version": plan["version"]}
	out := map[string]any{}
	for k, v := range ev {
		out[k] = v
	}
	p := map[string]any{}
	for k, v := range plan {
		p[k] = v
	}
	p["original"], p["target"] = root, root
	out["plan"] = p
	return out
}

func (s *Server) sendLocked(b []byte) {
	for c := range s.streams {
		select {
		case c <- b:
		default:
		}
	}
}

// Push sends one event (the JSON of an event-bus message, e.g. a fixture)
// to every open stream, named after its eventType. Streams that filtered
// its type do not get it.
func (s *Server) Push(event []byte) error {
	var e map[string]any
	if err := json.Unmarshal(event, &e); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	compact := strings.Join(strings.Fields(string(event)), " ")
	typ := fmt.Sprint(e["eventType"])
	b := []byte("event: " + typ + "\ndata: " + compact + "\n\n")
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, st := range s.streams {
		if len(st.types) > 0 && !st.types[typ] {
			continue
		}
		select {
		case c <- b:
		default:
		}
	}
	return nil
}

// PushRaw sends raw text/event-stream bytes (e.g. a recorded transcript)
// to every stream, whatever it filtered.
func (s *Server) PushRaw(b []byte) {
	s.mu.Lock()
	s.sendLocked(append([]byte(nil), b...))
	s.mu.Unlock()
}

// Streams returns how many event streams are open.
func (s *Server) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// DropStreams ends every open event stream, as a leader change does.
func (s *Server) DropStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.streams {
		delete(s.streams, c)
		close(c)
	}
}

// events serves GET /v2/events (text/event-stream). Like Marathon it
// starts with an event_stream_attached event (if the filter lets it
// through) and honours event_type and plan-format.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no flusher", 500)
		return
	}
	q := r.URL.Query()
	st := &stream{types: map[string]bool{}, heavy: s.heavyFor(q.Get("plan-format") == "light")}
	for _, t := range q["event_type"] {
		st.types[t] = true
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	c := make(chan []byte, 1024)
	s.mu.Lock()
	s.streams[c] = st
	attached, _ := json.Marshal(map[string]any{"remoteAddress": r.RemoteAddr, "eventType": "event_stream_attached", "timestamp": s.now()})
	s.mu.Unlock()
	if len(st.types) == 0 || st.types["event_stream_attached"] {
		fmt.Fprintf(w, "event: event_stream_attached\ndata: %s\n\n", attached)
	}
	fl.Flush()
	beat := time.NewTicker(s.opts.Heartbeat)
	defer beat.Stop()
	for {
		var b []byte
		select {
		case m, ok := <-c:
			if !ok {
				return
			}
			b = m
		case <-beat.C:
			b = []byte("\r\n")
		case <-r.Context().Done():
			s.mu.Lock()
			if _, ok := s.streams[c]; ok {
				delete(s.streams, c)
			}
			s.mu.Unlock()
			return
		case <-s.stop:
			return
		}
		s.mu.Lock()
		stalled := s.stalled
		s.mu.Unlock()
		if stalled {
			continue
		}
		if _, err := w.Write(b); err != nil {
			return
		}
		fl.Flush()
	}
}

// Stall makes every event stream go silent while the connection stays
// open (no events, no heartbeats), as a connection whose peer vanished
// without a FIN; Stall(false) ends that.
func (s *Server) Stall(on bool) {
	s.mu.Lock()
	s.stalled = on
	s.mu.Unlock()
}
