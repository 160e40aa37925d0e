package webhook

import (
	"container/list"
	"sync"
)

// deliveries remembers the most recent X-GitHub-Delivery ids so that a
// redelivered (or replayed) push deploys once. It is bounded: the oldest id
// is forgotten when the set is full, which is fine because GitHub only
// redelivers recent deliveries.
type deliveries struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: newest
	ids   map[string]*list.Element
}

func newDeliveries(max int) *deliveries {
	return &deliveries{max: max, order: list.New(), ids: make(map[string]*list.Element)}
}

// add records id and reports whether it was new. Checking and recording
// happen under one lock, so two concurrent copies cannot both be new.
func (d *deliveries) add(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.ids[id]; ok {
		d.order.MoveToFront(e)
		return false
	}
	d.ids[id] = d.order.PushFront(id)
	for d.order.Len() > d.max {
		oldest := d.order.Back()
		d.order.Remove(oldest)
		delete(d.ids, oldest.Value.(string))
	}
	return true
}

// remove forgets id, so a delivery that could not be queued can be retried.
func (d *deliveries) remove(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.ids[id]; ok {
		d.order.Remove(e)
		delete(d.ids, id)
	}
}
