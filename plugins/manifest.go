package plugins

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// ManifestFile is the name of the manifest inside a plugins directory.
const ManifestFile = "plugins.json"

// Defaults for the optional fields of a manifest entry.
const (
	DefaultTimeout     = 10 * time.Millisecond
	DefaultMemoryPages = 256 // 16 MiB
	maxTimeout         = 10 * time.Second
)

// manifest is plugins.json: {"plugins": [entry, …]}.
type manifest struct {
	Plugins []entry `json:"plugins"`
}

// entry is one plugin of the manifest. See the package documentation for the fields.
type entry struct {
	Name        string          `json:"name"`
	Wasm        string          `json:"wasm"`
	Order       int             `json:"order"`
	Buckets     []string        `json:"buckets"`
	Prefixes    []string        `json:"prefixes"`
	Config      json.RawMessage `json:"config"`
	Timeout     string          `json:"timeout"`
	MemoryPages uint32          `json:"memory_pages"`
	PoolSize    int             `json:"pool_size"`
	FailOpen    bool            `json:"fail_open"`
	Grants      []string        `json:"grants"`
	// Reads names the parts of the input beyond the request line that the plugin reads:
	// "object" (the object's current metadata) and "headers" (request.headers). Absent means
	// both; a part not named is left empty, and weir skips the work of filling it.
	Reads []string `json:"reads"`

	timeout      time.Duration
	clock        bool
	random       bool
	readsObject  bool
	readsHeaders bool
}

// parseManifest decodes and validates plugins.json, fills defaults and returns the entries in
// run order (ascending order, then manifest position).
func parseManifest(data []byte) ([]entry, error) {
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrManifest, ManifestFile, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: %s: data after the top-level object", ErrManifest, ManifestFile)
	}
	seen := map[string]bool{}
	for i := range m.Plugins {
		e := &m.Plugins[i]
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: %s: plugin %d (%q): %s", ErrManifest, ManifestFile, i, e.Name, fmt.Sprintf(format, args...))
		}
		switch {
		case e.Name == "":
			return nil, bad("no name")
		case seen[e.Name]:
			return nil, bad("duplicate name")
		case e.Wasm == "":
			return nil, bad(`no "wasm" file`)
		case filepath.IsAbs(e.Wasm) || !filepath.IsLocal(e.Wasm):
			return nil, bad("wasm %q must be a path inside the plugins directory", e.Wasm)
		case e.PoolSize < 0:
			return nil, bad("pool_size %d", e.PoolSize)
		case e.MemoryPages > 65536:
			return nil, bad("memory_pages %d over 65536 (4 GiB)", e.MemoryPages)
		}
		seen[e.Name] = true
		e.timeout = DefaultTimeout
		if e.Timeout != "" {
			d, err := time.ParseDuration(e.Timeout)
			if err != nil || d <= 0 || d > maxTimeout {
				return nil, bad("timeout %q: want a duration in (0, %s]", e.Timeout, maxTimeout)
			}
			e.timeout = d
		}
		if e.MemoryPages == 0 {
			e.MemoryPages = DefaultMemoryPages
		}
		if e.PoolSize == 0 {
			e.PoolSize = runtime.GOMAXPROCS(0)
		}
		for _, g := range e.Grants {
			switch g {
			case "clock":
				e.clock = true
			case "random":
				e.random = true
			default:
				return nil, bad("unknown grant %q (known: clock, random)", g)
			}
		}
		e.readsObject, e.readsHeaders = e.Reads == nil, e.Reads == nil
		for _, r := range e.Reads {
			switch r {
			case "object":
				e.readsObject = true
			case "headers":
				e.readsHeaders = true
			default:
				return nil, bad("unknown reads %q (known: object, headers)", r)
			}
		}
		for _, b := range e.Buckets {
			if b == "" {
				return nil, bad("empty bucket name")
			}
		}
		if string(bytes.TrimSpace(e.Config)) == "null" {
			e.Config = nil
		}
	}
	slices.SortStableFunc(m.Plugins, func(a, b entry) int { return a.Order - b.Order })
	return m.Plugins, nil
}

// matches reports whether the entry applies to a request on bucket and key.
func (e *entry) matches(bucket, key string) bool {
	if len(e.Buckets) > 0 && !slices.ContainsFunc(e.Buckets, func(b string) bool { return b == "*" || b == bucket }) {
		return false
	}
	if len(e.Prefixes) > 0 && !slices.ContainsFunc(e.Prefixes, func(p string) bool { return strings.HasPrefix(key, p) }) {
		return false
	}
	return true
}

// invalidBucketName says why name cannot be an S3 bucket's name, or "" if it can be. It follows
// the rules the engine enforces when a bucket is created (engine.ValidBucketName; the plugins
// package does not import the engine): a manifest naming such a bucket is loaded, with a warning.
func invalidBucketName(name string) string {
	if len(name) < 3 || len(name) > 63 {
		return "bucket names are 3 to 63 characters long"
	}
	for i := range len(name) {
		if c := name[i]; !(isLowerAlnum(c) || c == '.' || c == '-') {
			return "bucket names use only lower-case letters, digits, '.' and '-'"
		}
	}
	switch {
	case !isLowerAlnum(name[0]) || !isLowerAlnum(name[len(name)-1]):
		return "bucket names begin and end with a letter or digit"
	case strings.Contains(name, "..") || strings.Contains(name, ".-") || strings.Contains(name, "-."):
		return "bucket names have no adjacent periods or period-hyphen pairs"
	case net.ParseIP(name) != nil:
		return "bucket names are not IP addresses"
	case strings.HasPrefix(name, "xn--") || strings.HasPrefix(name, "sthree-") ||
		strings.HasSuffix(name, "-s3alias") || strings.HasSuffix(name, "--ol-s3"):
		return "the prefix or suffix is reserved by S3"
	}
	return ""
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
