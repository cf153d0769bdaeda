package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOperatorGuide runs the blocks of docs/operations.md marked <!-- run -->, in order, in one
// shell, with the built weir on PATH and the repository's examples/ beside them, as an operator
// would; each block's output is checked for what the guide promises.
func TestOperatorGuide(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		skipOrFailInCI(t, "the guide uses curl, which is not installed")
	}
	guide, err := os.ReadFile("docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- run -->\n```sh\n(.*?)```").FindAllStringSubmatch(string(guide), -1)
	if len(blocks) < 5 {
		t.Fatalf("the guide has %d runnable blocks", len(blocks))
	}
	work := t.TempDir()
	examples, _ := filepath.Abs("examples")
	if err := os.Symlink(examples, filepath.Join(work, "examples")); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for i, b := range blocks {
		script.WriteString("echo '--- block " + string(rune('1'+i)) + "'\n" + b[1])
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(weirBinary)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the guide's commands failed: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{
		"weir: S3 endpoint http://127.0.0.1:18181", // started, printed its endpoint
		"--- block 2\nok\n",                        // /healthz
		`"msg":"policy loaded"`,                    // the policy loaded (from the JSON log)
		"passed, 0 failed",                         // weir policy test
		"--- block 5\n1\n",                         // a clean stop, logged once
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the guide's output lacks %q:\n%s", want, got)
		}
	}
}
