package policies

import (
	"slices"
	"strconv"
	"strings"
	"sync"
)

// maxMemoEntries bounds a policy's decision memo; when it fills, it starts over.
const maxMemoEntries = 8192

// decisionMemo maps the values at a policy's input paths to its decision, for one compiled
// policy version: a reload starts with an empty one, so it never serves an old answer.
type decisionMemo struct {
	paths [][]string // sorted, without duplicates or paths under another listed path
	mu    sync.RWMutex
	m     map[string]Answer
}

func newDecisionMemo(paths [][]string) *decisionMemo {
	slices.SortFunc(paths, slices.Compare)
	paths = slices.CompactFunc(paths, slices.Equal)
	var kept [][]string
	for _, p := range paths { // input.bucket covers input.bucket.tags.x
		if len(kept) == 0 || !hasPrefix(p, kept[len(kept)-1]) {
			kept = append(kept, p)
		}
	}
	return &decisionMemo{paths: kept, m: make(map[string]Answer)}
}

func hasPrefix(p, prefix []string) bool {
	return len(p) >= len(prefix) && slices.Equal(p[:len(prefix)], prefix)
}

func (c *decisionMemo) get(key string) (Answer, bool) {
	c.mu.RLock()
	d, ok := c.m[key]
	c.mu.RUnlock()
	return d, ok
}

func (c *decisionMemo) put(key string, d Answer) {
	c.mu.Lock()
	if len(c.m) >= maxMemoEntries {
		clear(c.m)
	}
	c.m[key] = d
	c.mu.Unlock()
}

// key encodes the values at the memo's paths in in: each value length-prefixed, absent ones
// marked, so that two inputs share a key only if the policy sees the same values.
func (c *decisionMemo) key(in *Input) string {
	var b strings.Builder
	k := keyWriter{&b}
	for _, p := range c.paths {
		k.value(in, p)
	}
	return b.String()
}

type keyWriter struct{ b *strings.Builder }

func (k keyWriter) str(s string) {
	k.b.WriteString(strconv.Itoa(len(s)))
	k.b.WriteByte(':')
	k.b.WriteString(s)
}

func (k keyWriter) absent() { k.b.WriteByte('~') }

func (k keyWriter) strMap(m map[string]string, path []string) {
	if len(path) > 0 {
		if v, ok := m[path[0]]; ok && len(path) == 1 {
			k.str(v)
		} else {
			k.absent()
		}
		return
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	k.str(strconv.Itoa(len(names)))
	for _, n := range names {
		k.str(n)
		k.str(m[n])
	}
}

// value writes the value at path (below input) in in.
func (k keyWriter) value(in *Input, path []string) {
	field, rest := path[0], path[1:]
	switch field {
	case "action":
		k.str(in.Action)
	case "operation":
		k.str(in.Operation)
	case "principal":
		p := &in.Principal
		all := len(rest) == 0
		if all || rest[0] == "access_key" {
			k.str(p.AccessKey)
		}
		if all || rest[0] == "name" {
			k.str(p.Name)
		}
		if all || rest[0] == "root" {
			k.str(strconv.FormatBool(p.Root))
		}
		if all || rest[0] == "groups" {
			k.str(strconv.Itoa(len(p.Groups)))
			for _, g := range p.Groups {
				k.str(g)
			}
		}
	case "bucket":
		bk := &in.Bucket
		if bk.Name == "" {
			k.absent()
			return
		}
		all := len(rest) == 0
		if all || rest[0] == "name" {
			k.str(bk.Name)
		}
		if all || rest[0] == "owner" {
			k.str(bk.Owner)
		}
		if all || rest[0] == "strategy" {
			k.str(string(bk.Strategy))
		}
		if all || rest[0] == "tags" {
			if all {
				k.strMap(bk.Tags, nil)
			} else {
				k.strMap(bk.Tags, rest[1:])
			}
		}
	case "request": // never whole, never time (analyseInput)
		r := &in.Request
		switch rest[0] {
		case "method":
			k.str(r.Method)
		case "size":
			k.str(strconv.FormatInt(r.Size, 10))
		case "remote_addr":
			k.str(r.RemoteAddr)
		case "headers":
			k.strMap(r.Headers, rest[1:])
		default:
			k.absent()
		}
	case "object": // only its key (analyseInput)
		if in.Object.Key == "" {
			k.absent()
			return
		}
		k.str(in.Object.Key)
	case "proposal":
		pr := in.Proposal
		if pr == nil {
			k.absent()
			return
		}
		if len(rest) == 0 || rest[0] == "strategy" {
			k.str(string(pr.Strategy))
		}
		if len(rest) == 0 || rest[0] == "decided_by" {
			k.str(pr.DecidedBy)
		}
	default:
		k.absent() // a field the input document does not have: always undefined
	}
}
