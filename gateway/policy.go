package gateway

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/weirproject/weir/engine"
	"github.com/weirproject/weir/policies"
)

// errPolicy fails a request whose policy could not decide (an evaluation error or an answer
// weir cannot use): the request fails closed with 500 and the error is logged.
var errPolicy = errors.New("the policy could not decide this request")

// PolicySource hands out the policy serving now: a *policies.Policy, or a *policies.Dir that
// hot-reloads.
type PolicySource interface{ Policy() *policies.Policy }

// NewPolicyDecider makes a Rego policy the decision step: it sees DESIGN §7's input document
// and has the final word on allow and on the strategy.
func NewPolicyDecider(p PolicySource, eng *engine.Engine) Decider {
	return &policyDecider{p: p, eng: eng}
}

type policyDecider struct {
	p   PolicySource
	eng *engine.Engine
}

func (d *policyDecider) Decide(ctx context.Context, in *DecisionInput) (Decision, error) {
	r := in.Request
	policy := d.p.Policy()
	pin := &policies.Input{
		Action:    in.Action,
		Principal: policies.Principal{AccessKey: in.User.AccessKey, Name: in.User.Name, Groups: in.User.Groups, Root: in.User.Root},
		Request: policies.Request{Method: r.Method, Size: r.ContentLength, RemoteAddr: r.RemoteAddr, Time: time.Now(),
			Headers: make(map[string]string, len(r.Header))},
	}
	// The header block is already bounded (MaxHeaderBytes); the policy sees each header's
	// first value under its lower-case name.
	for name, vals := range r.Header {
		if len(vals) > 0 && name != "Authorization" {
			pin.Request.Headers[strings.ToLower(name)] = vals[0]
		}
	}
	d0 := Decision{Strategy: engine.LastWriterWins, DecidedBy: "bucket"}
	if b := in.Bucket; b != nil {
		pin.Bucket = &policies.Bucket{Name: b.Name, Owner: b.Owner, Strategy: string(b.Strategy), Tags: b.Tags}
		if b.Strategy != "" {
			d0.Strategy = b.Strategy
		}
		if in.Key != "" {
			pin.Object = d.object(in, policy.NeedsObject())
		}
	}
	dec, err := policy.Decide(ctx, pin)
	if err != nil {
		return Decision{DecidedBy: "policy"}, errorf(errPolicy, "%v", err)
	}
	if !dec.Allow {
		reason := dec.Reason
		if reason == "" {
			reason = "denied by policy"
		}
		return Decision{DecidedBy: "policy"}, errorf(errAccessDenied, "%s", reason)
	}
	d0.ReadRequiresLease = dec.ReadRequiresLease
	if dec.Strategy != "" {
		return Decision{Strategy: engine.Strategy(dec.Strategy), DecidedBy: "policy", ReadRequiresLease: dec.ReadRequiresLease}, nil
	}
	return d0, nil
}

// object fills input.object: from what the request already loaded, else from the store when
// the policy reads it, else with the key alone.
func (d *policyDecider) object(in *DecisionInput, needed bool) *policies.Object {
	obj := &policies.Object{Key: in.Key, LeaseState: string(engine.LeaseAvailable)}
	info := in.Object
	if !in.ObjectLoaded && needed {
		if i, err := d.eng.StatObject(in.Bucket.Name, in.Key); err == nil {
			info = &i
		}
	}
	if info != nil {
		obj.Exists, obj.ETag, obj.Size, obj.Generation = true, info.ETag, info.Size, info.Generation
		obj.ContentType, obj.LeaseState = info.ContentType, string(info.Lease.State)
	}
	return obj
}
