package policies

import (
	"slices"
	"strconv"
	"strings"
	"sync"
)

// maxMemoEntries bounds a policy's decision memo; when it fills, it starts over. The keys are
// (action, principal, bucket, proposal) combinations, so a working set is small.
const maxMemoEntries = 8192

// decisionMemo maps memoKey → Decision for one compiled policy. A new policy version starts
// with an empty one, so a reload never serves an old answer.
type decisionMemo struct {
	mu sync.RWMutex
	m  map[string]Decision
}

func newDecisionMemo() *decisionMemo { return &decisionMemo{m: make(map[string]Decision)} }

func (c *decisionMemo) get(key string) (Decision, bool) {
	c.mu.RLock()
	d, ok := c.m[key]
	c.mu.RUnlock()
	return d, ok
}

func (c *decisionMemo) put(key string, d Decision) {
	c.mu.Lock()
	if len(c.m) >= maxMemoEntries {
		clear(c.m)
	}
	c.m[key] = d
	c.mu.Unlock()
}

// memoKey encodes every input field a stable policy may read: length-prefixed, so no two
// inputs share a key.
func memoKey(in *Input) string {
	var b strings.Builder
	field := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	field(in.Action)
	p := &in.Principal
	field(p.AccessKey)
	field(p.Name)
	field(strconv.FormatBool(p.Root))
	field(strconv.Itoa(len(p.Groups)))
	for _, g := range p.Groups {
		field(g)
	}
	bk := &in.Bucket
	field(bk.Name)
	field(bk.Owner)
	field(bk.Strategy)
	field(strconv.Itoa(len(bk.Tags)))
	if len(bk.Tags) > 0 {
		tags := make([]string, 0, len(bk.Tags))
		for k := range bk.Tags {
			tags = append(tags, k)
		}
		slices.Sort(tags)
		for _, k := range tags {
			field(k)
			field(bk.Tags[k])
		}
	}
	if pr := in.Proposal; pr != nil {
		field(pr.Strategy)
		field(pr.DecidedBy)
	} else {
		field("-")
	}
	return b.String()
}
