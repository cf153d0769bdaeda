// Package policies evaluates weir's Rego policies (OPA, Rego v1, package weir): for each request
// they decide whether it may proceed and may choose the concurrency strategy that guards it
// (docs/policies.md).
//
// A Policy is compiled and prepared once and evaluated many times: nothing is parsed or compiled
// on the request path, and the input document is handed to OPA as a prebuilt ast.Value. The
// package owns the input document's shape, the built-in policy and the reading of the policy's
// answer; it never sees HTTP or the store.
//
// A policy comes from weir's built-in Rego (Default), from Compile, or from an operator's
// directory or OPA bundle that hot-reloads (LoadDir). docs/policies.md documents the input
// document field by field; BenchmarkDecide measures one decision.
package policies

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/weirproject/weir/sdk/abi"
)

//go:embed default.rego
var defaultPolicy string

// ErrPolicy reports a policy that failed at evaluation time or answered something weir cannot
// use (an unknown strategy, a non-boolean allow). The request fails closed.
var ErrPolicy = errors.New("policy error")

// Input is the document a policy sees as `input` (docs/policies.md lists it field by field):
// the request as plugins see it (abi.Input, one shape for both), plus the S3 operation and the
// plugins' proposal. A zero Bucket.Name means the request names no bucket; a zero Object.Key,
// no object.
type Input struct {
	abi.Input
	// Operation is the S3 operation beside the action ("PutObject", "UploadPart",
	// "CompleteMultipartUpload", ...): several operations share one action.
	Operation string
	Proposal  *Proposal // the plugins' proposal, if any
}

// Proposal is what the plugins proposed.
type Proposal struct {
	Strategy  abi.Strategy
	DecidedBy string
}

// Answer is the policy's answer to one request.
type Answer struct {
	Allow             bool
	Strategy          abi.Strategy // "" when the policy does not override
	Reason            string
	ReadRequiresLease bool
}

// Policy is a compiled, prepared policy. It is safe for concurrent use.
type Policy struct {
	query                     rego.PreparedEvalQuery
	needsObject, needsHeaders bool
	// memo remembers the decisions of a policy whose answer depends only on the input paths
	// it names (analyseInput), keyed by the values there: most requests then skip evaluation.
	// nil otherwise.
	memo *decisionMemo
}

// NeedsObject reports whether the policy reads the object's state: input.object beyond its key
// (exists, etag, size, generation, content_type, lease). The gateway loads the object from the
// engine only for a policy that reads them, so a policy that never looks, or looks only at
// input.object.key, costs no store read.
func (p *Policy) NeedsObject() bool { return p.needsObject }

// NeedsHeaders reports whether the policy may read input.request.headers, so that the gateway
// copies the request's headers into the input only for a policy that looks at them.
func (p *Policy) NeedsHeaders() bool { return p.needsHeaders }

// Default returns the built-in policy.
func Default(ctx context.Context) (*Policy, error) {
	return Compile(ctx, map[string]string{"default.rego": defaultPolicy})
}

// Compile parses, compiles and prepares modules (file name → Rego source) that define package
// weir.
func Compile(ctx context.Context, modules map[string]string) (*Policy, error) {
	names := make([]string, 0, len(modules))
	for n := range modules {
		names = append(names, n)
	}
	sort.Strings(names)
	parsed := make([]*ast.Module, 0, len(names))
	for _, n := range names {
		m, err := ast.ParseModuleWithOpts(n, modules[n], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("compile policy: %w", err)
		}
		parsed = append(parsed, m)
	}
	return compileModules(ctx, parsed, nil, false)
}

// Built-ins a policy may not call: reading the environment (opa.runtime) always, the network
// unless the operator allows it (SourceOptions.AllowNetwork, --policies-allow-network). A policy
// runs on every request with the request's data in hand: it must not be able to send it out,
// make each request wait on a remote server, or read weir's secrets from the environment.
var (
	envBuiltins     = []string{"opa.runtime"}
	networkBuiltins = []string{"http.send", "net.lookup_ip_addr"}
)

// capabilities are OPA's, without the built-ins a policy may not call.
func capabilities(allowNetwork bool) *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	denied := envBuiltins
	if !allowNetwork {
		denied = append(slices.Clone(envBuiltins), networkBuiltins...)
	}
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool { return slices.Contains(denied, b.Name) })
	return caps
}

// evalTimeout bounds one evaluation: a policy that loops for longer fails closed (500).
var evalTimeout = time.Second

// compileModules prepares the query data.weir over parsed modules and data documents.
func compileModules(ctx context.Context, modules []*ast.Module, data map[string]any, allowNetwork bool) (*Policy, error) {
	opts := []func(*rego.Rego){rego.Query("data.weir"), rego.SetRegoVersion(ast.RegoV1), rego.StrictBuiltinErrors(true),
		rego.Capabilities(capabilities(allowNetwork))}
	if len(data) > 0 {
		opts = append(opts, rego.Store(inmem.NewFromObject(data)))
	}
	needsObject, needsHeaders, stable := false, false, true
	var paths [][]string
	for _, m := range modules {
		opts = append(opts, rego.ParsedModule(m))
		use := analyseInput(m)
		needsObject = needsObject || use.object
		needsHeaders = needsHeaders || use.headers
		stable = stable && use.stable
		paths = append(paths, use.paths...)
	}
	q, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile policy: %w", err)
	}
	p := &Policy{query: q, needsObject: needsObject, needsHeaders: needsHeaders}
	if stable {
		p.memo = newDecisionMemo(paths)
	}
	return p, nil
}

// inputUse is what a module reads of the input document, as far as its text shows.
type inputUse struct {
	object bool // it may read input.object beyond its key
	// stable: every read of input is a path of constant names (input.request.headers["x"]) to
	// a field that does not change on its own (not the object, not the request's time), and it
	// calls no non-deterministic builtin: equal values at those paths give equal decisions.
	stable bool
	paths  [][]string // the constant paths it reads, for the memo key
	// headers: it may read input.request.headers.
	headers bool
}

// analyseInput walks m's references to input and its calls. Anything it cannot see through (a
// variable index right after input, input used whole) counts as reading everything.
func analyseInput(m *ast.Module) inputUse {
	use := inputUse{stable: true}
	inputRefs, inputVars := 0, 0
	ast.WalkRefs(m, func(r ast.Ref) bool {
		if !r[0].Equal(ast.InputRootDocument) {
			return false
		}
		inputRefs++
		var path []string
		for _, t := range r[1:] {
			s, ok := t.Value.(ast.String)
			if !ok {
				break
			}
			path = append(path, string(s))
		}
		if len(path) == 0 || path[0] == "request" && (len(path) == 1 || path[1] == "headers") {
			use.headers = true
		}
		switch {
		case len(path) >= 2 && path[0] == "object" && path[1] == "key":
			// The key is the request's own: it costs no store read and is as stable as the
			// bucket's name.
			use.paths = append(use.paths, path[:2])
		case len(path) == 0 || path[0] == "object":
			use.object, use.stable = true, false
		case path[0] == "request" && (len(path) == 1 || path[1] == "time"):
			use.stable = false
		default:
			use.paths = append(use.paths, path)
		}
		return false
	})
	ast.WalkVars(m, func(v ast.Var) bool {
		if v.Equal(ast.InputRootDocument.Value) {
			inputVars++
		}
		return false
	})
	if inputVars > inputRefs {
		use.object, use.headers, use.stable = true, true, false
	}
	nondeterministic := func(op ast.Ref) {
		if b, ok := ast.BuiltinMap[op.String()]; ok && b.Nondeterministic {
			use.stable = false
		}
	}
	ast.WalkExprs(m, func(e *ast.Expr) bool {
		if op := e.Operator(); op != nil {
			nondeterministic(op)
		}
		return false
	})
	ast.WalkTerms(m, func(t *ast.Term) bool {
		if c, ok := t.Value.(ast.Call); ok && len(c) > 0 {
			if op, ok := c[0].Value.(ast.Ref); ok {
				nondeterministic(op)
			}
		}
		return false
	})
	return use
}

// Decide evaluates the policy for in.
func (p *Policy) Decide(ctx context.Context, in *Input) (Answer, error) {
	if p.memo == nil {
		return p.eval(ctx, in)
	}
	key := p.memo.key(in)
	if d, ok := p.memo.get(key); ok {
		return d, nil
	}
	d, err := p.eval(ctx, in)
	if err == nil {
		p.memo.put(key, d)
	}
	return d, err
}

// eval evaluates the prepared query for in.
func (p *Policy) eval(ctx context.Context, in *Input) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, evalTimeout)
	defer cancel()
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(in.Value()))
	if err != nil {
		return Answer{}, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Answer{}, fmt.Errorf("%w: data.weir is undefined", ErrPolicy)
	}
	doc, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return Answer{}, fmt.Errorf("%w: data.weir is not an object", ErrPolicy)
	}
	var d Answer
	if v, ok := doc["allow"]; ok {
		if d.Allow, ok = v.(bool); !ok {
			return Answer{}, fmt.Errorf("%w: allow is %v, not a boolean", ErrPolicy, v)
		}
	}
	if v, ok := doc["strategy"]; ok {
		name, _ := v.(string)
		s, ok := abi.ParseStrategy(name)
		if !ok {
			return Answer{}, fmt.Errorf("%w: strategy %v is not one of last-writer-wins, etag, lease", ErrPolicy, v)
		}
		d.Strategy = s
	}
	if v, ok := doc["reason"]; ok {
		d.Reason = fmt.Sprint(v)
	}
	if v, ok := doc["read_requires_lease"]; ok {
		d.ReadRequiresLease, _ = v.(bool)
	}
	return d, nil
}

// Value builds the input document as an OPA value directly (no JSON round trip).
func (in *Input) Value() ast.Value {
	obj := ast.NewObject(
		item("action", ast.String(in.Action)),
		item("operation", ast.String(in.Operation)),
		item("principal", ast.NewObject(
			item("access_key", ast.String(in.Principal.AccessKey)),
			item("name", ast.String(in.Principal.Name)),
			item("groups", stringArray(in.Principal.Groups)),
			item("root", ast.Boolean(in.Principal.Root)),
		)),
		item("request", ast.NewObject(
			item("method", ast.String(in.Request.Method)),
			item("headers", stringMap(in.Request.Headers)),
			item("size", ast.Number(strconv.FormatInt(in.Request.Size, 10))),
			item("remote_addr", ast.String(in.Request.RemoteAddr)),
			item("time", ast.String(in.Request.Time.UTC().Format(time.RFC3339))),
		)),
	)
	if b := &in.Bucket; b.Name != "" {
		obj.Insert(ast.StringTerm("bucket"), ast.NewTerm(ast.NewObject(
			item("name", ast.String(b.Name)),
			item("owner", ast.String(b.Owner)),
			item("strategy", ast.String(string(b.Strategy))),
			item("tags", stringMap(b.Tags)),
		)))
	}
	if o := &in.Object; o.Key != "" {
		obj.Insert(ast.StringTerm("object"), ast.NewTerm(ast.NewObject(
			item("key", ast.String(o.Key)),
			item("exists", ast.Boolean(o.Exists)),
			item("etag", ast.String(o.ETag)),
			item("size", ast.Number(strconv.FormatInt(o.Size, 10))),
			item("generation", ast.Number(strconv.FormatUint(o.Generation, 10))),
			item("content_type", ast.String(o.ContentType)),
			item("lease", ast.NewObject(item("state", ast.String(o.LeaseState)))),
			item("tags", stringMap(o.Tags)),
		)))
	}
	if p := in.Proposal; p != nil {
		obj.Insert(ast.StringTerm("proposal"), ast.NewTerm(ast.NewObject(
			item("strategy", ast.String(string(p.Strategy))),
			item("decided_by", ast.String(p.DecidedBy)),
		)))
	}
	return obj
}

func item(k string, v ast.Value) [2]*ast.Term { return [2]*ast.Term{ast.StringTerm(k), ast.NewTerm(v)} }

func stringArray(ss []string) ast.Value {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.StringTerm(s)
	}
	return ast.NewArray(terms...)
}

func stringMap(m map[string]string) ast.Value {
	obj := ast.NewObject()
	for k, v := range m {
		obj.Insert(ast.StringTerm(k), ast.StringTerm(v))
	}
	return obj
}
