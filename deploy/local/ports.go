package local

import (
	"fmt"
	"net"
	"strconv"
	"sync"
)

// portSet hands out TCP ports that were free when asked for and that no
// other instance of this process holds. The kernel picks the port (a
// listener on port 0), so two schedulers never race on a guessed number;
// the reservation set covers the gap between closing that listener and the
// app binding the port itself. It is package-wide so that several
// schedulers in one process (tests) never share a port either.
type portSet struct {
	mu    sync.Mutex
	taken map[int]bool
}

var ports = &portSet{taken: map[int]bool{}}

// reserve returns n distinct free ports on host.
func (p *portSet) reserve(host string, n int) ([]int, error) {
	out := make([]int, 0, n)
	for len(out) < n {
		port, err := p.one(host)
		if err != nil {
			p.release(out)
			return nil, err
		}
		out = append(out, port)
	}
	return out, nil
}

func (p *portSet) one(host string) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, fmt.Errorf("allocate port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		p.mu.Lock()
		if !p.taken[port] {
			p.taken[port] = true
			p.mu.Unlock()
			return port, nil
		}
		p.mu.Unlock()
	}
	return 0, fmt.Errorf("allocate port: no free port after 50 tries")
}

// free reports whether port can still be bound on host; a restarted
// instance keeps its ports unless something else took one meanwhile.
func free(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// release gives ports back.
func (p *portSet) release(list []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, port := range list {
		delete(p.taken, port)
	}
}

// claim marks ports as taken: those of an instance adopted from a
// previous Flock, which holds them already.
func (p *portSet) claim(list []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, port := range list {
		p.taken[port] = true
	}
}
