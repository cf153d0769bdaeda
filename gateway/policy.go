package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weirproject/weir/engine"
	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/policies"
	"github.com/weirproject/weir/sdk/abi"
)

// errPolicy fails a request whose policy could not decide (an evaluation error or an answer
// weir cannot use): the request fails closed with 500 and the error is logged.
var errPolicy = errors.New("the policy could not decide this request")

// errPluginFailed fails a request whose plugin trapped, ran out of time or memory, or answered
// garbage: 503, the plugin named in the message and in x-weir-plugin.
var errPluginFailed = errors.New("plugin failed")

// PolicySource hands out the policy serving now: a *policies.Policy, or a *policies.Dir that
// hot-reloads.
type PolicySource interface{ Policy() *policies.Policy }

// PluginSource hands out the plugin set serving now (a *plugins.Dir hot-reloads).
type PluginSource interface{ Set() *plugins.Set }

// pipeline is the decision step of DESIGN §7: the plugins that match run first and may deny
// or propose a strategy; then the Rego policy, which sees their proposal, has the final word
// on allow and on the strategy. A plugin's deny is a veto: the policy is not asked.
type pipeline struct {
	policy     PolicySource
	plugins    PluginSource // nil: no plugins
	eng        *engine.Engine
	policyTime interface{ Observe(float64) } // nil: not measured
}

func (p *pipeline) Decide(ctx context.Context, in *DecisionInput) (Decision, error) {
	policy := p.policy.Policy()
	var set *plugins.Set
	if p.plugins != nil {
		set = p.plugins.Set()
	}
	// The headers and the object's metadata cost a copy and a store read: they are filled only
	// when the policy or a matching plugin reads them.
	var bucket string
	if in.Bucket != nil {
		bucket = in.Bucket.Name
	}
	plugObj, plugHdr := set.Needs(bucket, in.Key)
	pin := &policies.Input{Input: requestDocument(in, plugHdr || policy.NeedsHeaders())}
	if in.Key != "" && in.Bucket != nil {
		pin.Object = p.object(in, plugObj || policy.NeedsObject())
	}
	d := Decision{Strategy: engine.LastWriterWins, DecidedBy: "bucket"}
	if in.Bucket != nil && in.Bucket.Strategy != "" {
		d.Strategy = in.Bucket.Strategy
	}
	if set != nil {
		pd, err := set.Decide(ctx, &pin.Input)
		var fault *plugins.FaultError
		switch {
		case errors.As(err, &fault):
			return Decision{DecidedBy: "plugin:" + fault.Plugin}, &pluginError{fault: fault}
		case err != nil:
			return Decision{DecidedBy: "plugin"}, err
		case pd.Verdict == abi.Deny:
			return Decision{DecidedBy: "plugin:" + pd.Plugin}, errorf(errAccessDenied, "%s", orDefault(pd.Reason, "denied by plugin "+pd.Plugin))
		case pd.Verdict == abi.Propose:
			pin.Proposal = &policies.Proposal{Strategy: pd.Strategy, DecidedBy: "plugin:" + pd.Plugin}
			d.Strategy, d.DecidedBy = engine.Strategy(pd.Strategy), "plugin:"+pd.Plugin
		}
	}
	start := time.Now()
	dec, err := policy.Decide(ctx, pin)
	if p.policyTime != nil {
		p.policyTime.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		return Decision{DecidedBy: "policy"}, errorf(errPolicy, "%v", err)
	}
	if !dec.Allow {
		return Decision{DecidedBy: "policy"}, errorf(errAccessDenied, "%s", orDefault(dec.Reason, "denied by policy"))
	}
	d.ReadRequiresLease = dec.ReadRequiresLease
	if dec.Strategy != "" {
		d.Strategy, d.DecidedBy = engine.Strategy(dec.Strategy), "policy"
	}
	return d, nil
}

// requestDocument builds the input document (without the object) that plugins and the policy
// share; request.headers only when someone will read them (copying them costs a map and a
// lower-casing per header on every request).
func requestDocument(in *DecisionInput, withHeaders bool) abi.Input {
	r := in.Request
	doc := abi.Input{
		Action:    in.Action,
		Principal: abi.Principal{AccessKey: in.User.AccessKey, Name: in.User.Name, Groups: in.User.Groups, Root: in.User.Root},
		Request:   abi.Request{Method: r.Method, Size: storedSize(r), RemoteAddr: r.RemoteAddr, Time: time.Now()},
	}
	// The header block is already bounded (MaxHeaderBytes); the document holds each header's
	// first value under its lower-case name.
	if withHeaders {
		doc.Request.Headers = make(map[string]string, len(r.Header))
		for name, vals := range r.Header {
			if len(vals) > 0 && name != "Authorization" {
				doc.Request.Headers[strings.ToLower(name)] = vals[0]
			}
		}
	}
	if b := in.Bucket; b != nil {
		doc.Bucket = abi.Bucket{Name: b.Name, Owner: b.Owner, Strategy: string(b.Strategy), Tags: b.Tags}
	}
	return doc
}

// storedSize is the size the request's body will store, as the body layer enforces it: an
// aws-chunked body (the SDKs' default for uploads) is larger on the wire than the object, and its
// decoded length is checked against the chunks; any other body stores its Content-Length, which
// net/http enforces, whatever x-amz-decoded-content-length claims.
func storedSize(r *http.Request) int64 {
	if !strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		return r.ContentLength
	}
	if m := r.URL.Query().Get("X-Amz-Content-Sha256"); m != "" && !strings.HasPrefix(m, "STREAMING-") {
		return r.ContentLength // a presigned URL's own payload mode wins over the header
	}
	n, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
	if err != nil || n < 0 {
		return r.ContentLength
	}
	return n
}

// object fills the document's object: from what the request already loaded, else from the
// store when someone will read it, else with the key alone.
func (p *pipeline) object(in *DecisionInput, needed bool) abi.Object {
	obj := abi.Object{Key: in.Key, LeaseState: string(engine.LeaseAvailable)}
	info := in.Object
	if !in.ObjectLoaded && needed {
		if i, err := p.eng.StatObject(in.Bucket.Name, in.Key); err == nil {
			info = &i
		}
	}
	if info != nil {
		obj.Exists, obj.ETag, obj.Size, obj.Generation = true, info.ETag, info.Size, info.Generation
		obj.ContentType, obj.LeaseState = info.ContentType, string(info.Lease.State)
	}
	return obj
}

// pluginError is a plugin fault as the client sees it: the plugin and the kind of fault, in the
// message and in x-weir-plugin. What the guest said (a trap's message, its stderr) stays in
// the log.
type pluginError struct{ fault *plugins.FaultError }

func (e *pluginError) Error() string {
	return "plugin " + e.fault.Plugin + " failed (" + e.fault.Kind + "), so the request was refused"
}

func (e *pluginError) Unwrap() error { return errPluginFailed }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
