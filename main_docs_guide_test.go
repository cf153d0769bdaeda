package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// requireTool skips a test (or, with CI=true, fails it) when an outside program is missing.
func requireTool(t *testing.T, name string) bool {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return true
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI must provide it)", name)
	}
	t.Logf("%s is not installed: skipping what needs it", name)
	return false
}

// docGuides are the pages whose every sh block TestDocGuides runs, with the strings each page
// quotes as weir's output (asserted to be in the page and in what its commands print), and
// further strings their output must hold.
var docGuides = []struct {
	page          string
	quotes, shows []string
}{
	{"docs/concurrency.md",
		[]string{
			"<ConcurrencyConfiguration><Strategy>lease</Strategy></ConcurrencyConfiguration>",
			"HTTP/1.1 201 Created",
			"<Error><Code>LeaseIdMissing</Code>",
			"# v2",
		},
		nil},
	{"docs/policies.md",
		[]string{
			"<Error><Code>AccessDenied</Code><Message>objects are limited to 1 MiB</Message>",
			"outcome=deny decider=policy status=403",
			`reason="objects are limited to 1 MiB"`,
			"policy change rejected; the previous policy keeps serving",
			"weir_policy_reloads_rejected_total 1",
		},
		[]string{"PASS data.weir_test.", " passed, 0 failed", "\nweir_policy_reloads_total 0\n"}},
}

// benchFlags shortens the pages' benchmark commands to one iteration: the test checks that
// the commands run, not how fast (the pages report measured numbers).
var benchFlags = regexp.MustCompile(`-benchtime \S+|-count \d+`)

// TestDocGuides runs every sh block of docs/concurrency.md and docs/policies.md, in order, one
// bash script per page, from the repository root with the built weir first on PATH, as a reader
// with a checkout would; a block whose first command is a missing program (opa) is skipped,
// saying so.
func TestDocGuides(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pages' commands, their benchmarks included (one iteration each)")
	}
	if !requireTool(t, "curl") {
		t.Skip("the pages use curl")
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range docGuides {
		t.Run(filepath.Base(g.page), func(t *testing.T) {
			page, err := os.ReadFile(g.page)
			if err != nil {
				t.Fatal(err)
			}
			blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(page), -1)
			if len(blocks) < 3 {
				t.Fatalf("%s has %d sh blocks", g.page, len(blocks))
			}
			work := t.TempDir()
			var script strings.Builder
			// Whatever happens, no weir the page started outlives the script.
			script.WriteString("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\ncd " + work + "\nln -s " + filepath.Join(root, "examples") + " examples\n")
			for i, b := range blocks {
				text := b[1]
				first := strings.Fields(text)[0]
				if first == "opa" && !requireTool(t, "opa") {
					continue
				}
				if strings.Contains(text, "go test ") {
					text = "(cd " + root + " && " + strings.TrimSpace(benchFlags.ReplaceAllStringFunc(text, func(f string) string {
						if strings.HasPrefix(f, "-count") {
							return "-count 1"
						}
						return "-benchtime 1x"
					})) + ")\n"
					text = strings.ReplaceAll(strings.TrimSuffix(text, ")\n"), "\n", " && ") + ")\n"
				}
				script.WriteString("echo '--- block " + string(rune('1'+i)) + "'\n" + text)
			}
			cmd := exec.Command("bash", "-c", script.String())
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(weirBinary)+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the page's commands failed: %v\n%s", err, out)
			}
			for _, q := range g.quotes {
				if !strings.Contains(string(page), q) {
					t.Errorf("%s no longer quotes %q", g.page, q)
				}
				if !strings.Contains(string(out), strings.TrimPrefix(q, "# ")) {
					t.Errorf("the page quotes %q, but its commands did not print it:\n%s", q, out)
				}
			}
			for _, s := range g.shows {
				if !strings.Contains(string(out), s) {
					t.Errorf("the output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}
