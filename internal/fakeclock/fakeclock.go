// Package fakeclock is the clock tests hand to weir wherever time matters (lease expiry,
// signature dates, upload expiry): time moves only when the test says so, so a test of a
// 60-second lease does not sleep a minute.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a settable clock, safe for concurrent use. Pass its Now method where weir takes a
// clock (engine.Options.Clock, gateway.Config.Now).
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock that reads start until it is moved.
func New(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
