package clients_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weirproject/weir/gateway/gatewaytest"
)

// guidePath is the guide whose code blocks TestClientsGuide runs.
const guidePath = "../../docs/clients.md"

// A guideBlock is one fenced code block of the guide and the <!-- test: ... --> line above it:
//
//	<!-- test: sh -->                          bash, must exit 0
//	<!-- test: sh expect="a" expect="b" -->    ... and print each expected string
//	<!-- test: sh fails="PreconditionFailed" --> must exit non-zero, printing that string
//	<!-- test: sh define -->                   run, then sourced before every later sh block
//	<!-- test: python [define] [expect=...] --> python3 with boto3, after the python define blocks
//	<!-- test: rclone -->                      bash, needs rclone
//	<!-- test: excerpt PATH -->                a verbatim excerpt of PATH (whose own test runs it)
//	<!-- test: no (reason) -->                 not run; the reason is the subtest's skip message
type guideBlock struct {
	line   int // of the opening fence
	lang   string
	kind   string // sh, python, rclone, excerpt, no
	define bool
	expect []string
	fails  string
	arg    string // excerpt: the file; no: the reason
	text   string
}

var (
	directiveRE = regexp.MustCompile(`^<!-- test: (\w+)(.*) -->$`)
	attrRE      = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

func parseGuide(t *testing.T, path string) []guideBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []guideBlock
	var pending *guideBlock
	var cur *guideBlock
	var body strings.Builder
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if cur != nil {
			if strings.TrimSpace(line) == "```" {
				cur.text = body.String()
				blocks = append(blocks, *cur)
				cur = nil
				continue
			}
			body.WriteString(line + "\n")
			continue
		}
		if lang, ok := strings.CutPrefix(line, "```"); ok {
			if pending == nil {
				t.Errorf("%s:%d: a ```%s block without a <!-- test: ... --> line: say whether and how the test runs it", path, n, lang)
				pending = &guideBlock{kind: "no", arg: "unmarked"}
			}
			cur, pending = pending, nil
			cur.line, cur.lang = n, lang
			body.Reset()
			continue
		}
		if m := directiveRE.FindStringSubmatch(line); m != nil {
			b := &guideBlock{kind: m[1]}
			rest := strings.TrimSpace(m[2])
			switch b.kind {
			case "no":
				b.arg = strings.Trim(rest, "()")
			case "excerpt":
				b.arg = rest
			case "sh", "python", "rclone":
				for _, a := range attrRE.FindAllStringSubmatch(rest, -1) {
					switch a[1] {
					case "expect":
						b.expect = append(b.expect, a[2])
					case "fails":
						b.fails = a[2]
					default:
						t.Errorf("%s:%d: unknown attribute %s", path, n, a[1])
					}
				}
				b.define = strings.HasPrefix(rest, "define")
			default:
				t.Errorf("%s:%d: unknown test directive %q", path, n, b.kind)
			}
			pending = b
			continue
		}
		if strings.TrimSpace(line) != "" {
			pending = nil // a directive applies to the block right below it
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: unterminated code block", path, cur.line)
	}
	return blocks
}

// TestClientsGuide runs docs/clients.md's code blocks, in order, against one real in-process
// weir, from one working directory, so later blocks use what earlier ones created (as a reader
// following the guide would). The aws CLI, curl, python3 with boto3 and rclone are used when
// installed; the blocks that need a missing one are skipped, saying which.
func TestClientsGuide(t *testing.T) {
	blocks := parseGuide(t, guidePath)
	counts := map[string]int{}
	for _, b := range blocks {
		counts[b.kind]++
	}
	for _, k := range []string{"sh", "python", "rclone", "excerpt"} {
		if counts[k] == 0 {
			t.Errorf("the guide has no %q block: did the parser or the guide change?", k)
		}
	}

	endpoint := gatewaytest.Start(t, gatewaytest.Options{}).URL
	work := t.TempDir()
	env := guideEnv(endpoint, work)

	missing := func(tools ...string) string {
		var m []string
		for _, tool := range tools {
			if _, err := exec.LookPath(tool); err != nil {
				m = append(m, tool)
			}
		}
		return strings.Join(m, ", ")
	}
	shMissing := missing("bash", "aws", "curl")
	pyMissing := missing("python3")
	if pyMissing == "" {
		cmd := exec.Command("python3", "-c", "import boto3")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			pyMissing = "python3's boto3 (" + strings.TrimSpace(string(out)) + ")"
		}
	}
	rcloneMissing := missing("bash", "aws", "curl", "rclone")

	var shPrelude, pyPrelude strings.Builder
	for i, b := range blocks {
		name := fmt.Sprintf("%02d-line%d-%s", i, b.line, b.kind)
		t.Run(name, func(t *testing.T) {
			switch b.kind {
			case "no":
				t.Skipf("%s:%d is not run: %s", guidePath, b.line, b.arg)
			case "excerpt":
				src, err := os.ReadFile(filepath.Join("../..", b.arg))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(src), b.text) {
					t.Fatalf("%s:%d claims to be an excerpt of %s, which does not contain it (any more):\n%s", guidePath, b.line, b.arg, b.text)
				}
			case "sh", "rclone":
				need := shMissing
				if b.kind == "rclone" {
					need = rcloneMissing
				}
				if need != "" {
					skipOrFailInCI(t, fmt.Sprintf("%s:%d not run: %s not installed", guidePath, b.line, need))
				}
				script := "set -euo pipefail\n" + shPrelude.String() + b.text
				runBlock(t, b, env, work, "bash", "-c", script)
				if b.define {
					shPrelude.WriteString(b.text)
				}
			case "python":
				if pyMissing != "" {
					skipOrFailInCI(t, fmt.Sprintf("%s:%d not run: %s not installed", guidePath, b.line, pyMissing))
				}
				file := filepath.Join(work, fmt.Sprintf("block-%d.py", b.line))
				if err := os.WriteFile(file, []byte(pyPrelude.String()+b.text), 0o644); err != nil {
					t.Fatal(err)
				}
				runBlock(t, b, env, work, "python3", file)
				if b.define {
					pyPrelude.WriteString(b.text + "\n")
				}
			}
		})
	}
}

// runBlock runs one block's command and checks its exit status and output.
func runBlock(t *testing.T, b guideBlock, env []string, dir string, name string, args ...string) {
	t.Helper()
	// A bound for a block that hangs, not a speed check: the aws CLI takes seconds per call to
	// start on a loaded machine, and a block of a few calls took over a minute there.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env, cmd.Dir = env, dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s:%d (%s, %v):\n%s", guidePath, b.line, b.kind, time.Since(start).Round(time.Millisecond), out)
	if b.fails != "" {
		if err == nil {
			t.Fatalf("%s:%d should fail with %s, but succeeded", guidePath, b.line, b.fails)
		}
		if !strings.Contains(string(out), b.fails) {
			t.Fatalf("%s:%d failed (%v) without %q in its output", guidePath, b.line, err, b.fails)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s:%d failed: %v", guidePath, b.line, err)
	}
	for _, want := range b.expect {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s:%d printed no %q", guidePath, b.line, want)
		}
	}
}

// guideEnv is the environment the guide tells its reader to set, pointed at the test server,
// with the machine's own AWS and rclone settings removed (a profile, a CA bundle meant for
// outbound TLS, which rclone refuses to combine with its own transport) and the tools' config
// files kept in the test's directory, away from the user's.
func guideEnv(endpoint, work string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "RCLONE_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"AWS_ENDPOINT_URL="+endpoint,
		"AWS_ACCESS_KEY_ID="+gatewaytest.RootAccessKey,
		"AWS_SECRET_ACCESS_KEY="+gatewaytest.RootSecretKey,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+filepath.Join(work, ".aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(work, ".aws-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
		"RCLONE_CONFIG="+filepath.Join(work, ".rclone.conf"),
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	)
}

// TestClientsGuideLinks checks that the guide's relative links lead somewhere.
func TestClientsGuideLinks(t *testing.T) {
	src, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\]\(([^)#:]+)(#[^)]*)?\)`).FindAllStringSubmatch(string(src), -1) {
		if _, err := os.Stat(filepath.Join(filepath.Dir(guidePath), m[1])); err != nil {
			t.Errorf("broken link %s: %v", m[0], err)
		}
	}
}

// skipOrFailInCI skips a block whose program is missing, except in CI (CI=true), which installs
// every program the guide uses: there a missing one is a failure.
func skipOrFailInCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (CI=true: .ci/run must install it)")
	}
	t.Skip(why)
}
