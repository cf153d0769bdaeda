package policies

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestExamplePolicies compiles every example policy and runs its Rego tests.
func TestExamplePolicies(t *testing.T) {
	dirs, err := filepath.Glob("../examples/policies/*")
	if err != nil || len(dirs) < 5 {
		t.Fatalf("example policies: %v %v", dirs, err)
	}
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if _, err := LoadDir(context.Background(), dir, SourceOptions{}); err != nil {
				t.Fatal(err)
			}
			results, err := TestDir(context.Background(), dir, SourceOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(results) == 0 {
				t.Fatal("no Rego tests")
			}
			for _, r := range results {
				if !r.Passed {
					t.Errorf("%s: %s", r.Name, r.Error)
				}
			}
		})
	}
}
