package engine

import (
	"log/slog"
	"sync"
	"time"
)

// backupEvery bounds how often changes are copied to flock.db.bak: the
// first change after a quiet spell is copied at once, later ones together
// at most this often, so a burst of deploys costs one copy.
const backupEvery = 30 * time.Second

// copier runs Store.Backup in the background after changes to apps and
// releases, so that the copy a damaged store is restored from is at most
// backupEvery behind. deploy.Rollout records (logs) do not trigger a copy; they
// ride along with the next one.
type copier struct {
	mu      sync.Mutex
	dirty   bool // a change since the last copy began
	running bool // the copy loop runs
	closed  bool
	stop    chan struct{} // closed by stopAndWait: cut the wait short
	wg      sync.WaitGroup
}

// changed tells the copier the store changed.
func (s *Store) changed() {
	c := &s.copier
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = true
	if c.running || c.closed {
		return
	}
	if c.stop == nil {
		c.stop = make(chan struct{})
	}
	c.running = true
	c.wg.Add(1)
	go s.copyLoop()
}

func (s *Store) copyLoop() {
	c := &s.copier
	defer c.wg.Done()
	for {
		c.mu.Lock()
		if !c.dirty || c.closed {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.dirty = false
		c.mu.Unlock()
		if err := s.Backup(); err != nil {
			slog.Error("store copy", "err", err)
		}
		t := time.NewTimer(backupEvery)
		select {
		case <-t.C:
		case <-c.stop:
			t.Stop()
		}
	}
}

// stopAndWait ends the copy loop; Close makes the last copy itself.
func (c *copier) stopAndWait() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		if c.stop != nil {
			close(c.stop)
		}
	}
	c.mu.Unlock()
	c.wg.Wait()
}
