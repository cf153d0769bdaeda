package policies

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDirReload: a valid change is picked up; a change that does not compile, or whose own
// tests fail, is rejected and the previous policy keeps serving.
func TestDirReload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("p.rego", "package weir\nallow if input.principal.root\n")
	write("p_test.rego", "package weir_test\nimport data.weir\ntest_root if weir.allow with input as {\"principal\": {\"root\": true}}\n")
	d, err := LoadDir(ctx, dir, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	decide := func() bool {
		dec, err := d.Policy().Decide(ctx, sampleInput("A", false, "A"))
		if err != nil {
			t.Fatal(err)
		}
		return dec.Allow
	}
	if decide() {
		t.Fatal("the first policy allows only root")
	}
	first := d.Stats()
	if first.Reloads != 0 || first.Rejected != 0 || len(first.Revision) != 12 {
		t.Fatalf("stats after the first load: %+v", first)
	}
	if changed, err := d.Reload(ctx); changed || err != nil {
		t.Fatalf("reload without a change: %v %v", changed, err)
	}
	write("p.rego", "package weir\nallow if input.principal.root\nallow if input.bucket.owner == input.principal.access_key\n")
	if changed, err := d.Reload(ctx); !changed || err != nil {
		t.Fatalf("valid change: %v %v", changed, err)
	}
	if !decide() {
		t.Fatal("the new policy lets owners act")
	}
	if st := d.Stats(); st.Reloads != 1 || st.Rejected != 0 || st.Revision == first.Revision {
		t.Fatalf("stats after a good reload: %+v (first %+v)", st, first)
	}
	good := d.Stats().Revision
	write("p.rego", "package weir\nallow if {\n")
	if changed, err := d.Reload(ctx); changed || err == nil {
		t.Fatalf("a policy that does not parse was accepted: %v", err)
	}
	if !decide() {
		t.Fatal("the previous policy stopped serving")
	}
	if st := d.Stats(); st.Reloads != 1 || st.Rejected != 1 || st.Revision != good {
		t.Fatalf("stats after a rejected reload: %+v", st)
	}
	write("p.rego", "package weir\nallow := false\n") // compiles, but fails p_test.rego
	_, err = d.Reload(ctx)
	if err == nil || !strings.Contains(err.Error(), "test_root") {
		t.Fatalf("a policy failing its own tests was accepted: %v", err)
	}
	if !decide() {
		t.Fatal("the previous policy stopped serving")
	}
}

// TestLoadLogCountsTests: the "policy loaded" line counts test rules, not test files.
func TestLoadLogCountsTests(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"p.rego":      "package weir\nallow if input.principal.root\n",
		"p_test.rego": "package weir_test\nimport data.weir\ntest_root if weir.allow with input as {\"principal\": {\"root\": true}}\ntest_other if not weir.allow with input as {\"principal\": {\"root\": false}}\nhelper := 1\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var log strings.Builder
	if _, err := LoadDir(context.Background(), dir, SourceOptions{Logger: slog.New(slog.NewTextHandler(&log, nil))}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "msg=\"policy loaded\"") || !strings.Contains(log.String(), " modules=1 tests=2 ") {
		t.Fatalf("load log: %s", log.String())
	}
}
