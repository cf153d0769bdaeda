package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/weirproject/weir/engine"
)

// Decision is what the decision step settles for one request: whether it may proceed (a denial
// is an error) and which concurrency strategy guards its write.
type Decision struct {
	Strategy  engine.Strategy
	DecidedBy string // "bucket", "policy" or "plugin:<name>"
	// ReadRequiresLease makes a GET or HEAD carry the object's active lease id (exclusive reads).
	ReadRequiresLease bool
}

// DecisionInput is what the decision step sees. It grows into DESIGN §7's input document as
// policies and plugins arrive; the gateway fills it once per request.
type DecisionInput struct {
	Action  string // "s3:PutObject", ...
	User    *User
	Bucket  *engine.Bucket // nil for service-level actions and CreateBucket
	Key     string
	Request *http.Request
}

// Decider runs the decision step between parsing a request and committing it.
type Decider interface {
	// Decide returns the decision, or an error wrapping errAccessDenied (or another gateway
	// error) that fails the request.
	Decide(ctx context.Context, in *DecisionInput) (Decision, error)
}

// ownerDecider is the built-in rule: root may do anything, other users act only on buckets they
// own, and the bucket's configured strategy stands.
type ownerDecider struct{}

func (ownerDecider) Decide(_ context.Context, in *DecisionInput) (Decision, error) {
	d := Decision{Strategy: engine.LastWriterWins, DecidedBy: "bucket"}
	if in.Bucket != nil {
		if in.Bucket.Strategy != "" {
			d.Strategy = in.Bucket.Strategy
		}
		if !in.User.Root && in.Bucket.Owner != in.User.AccessKey {
			return d, errorf(errAccessDenied, "%s may not %s on bucket %s: it belongs to another user", in.User.Name, in.Action, in.Bucket.Name)
		}
	}
	return d, nil
}

// decide loads rq's bucket and runs the decision step for action on it.
func (s *Server) decide(rq *request, action string) (engine.Bucket, Decision, error) {
	b, err := s.eng.GetBucket(rq.bucket)
	if err != nil {
		return b, Decision{}, err
	}
	d, err := s.runDecision(rq, &DecisionInput{Action: action, User: rq.user, Bucket: &b, Key: rq.key, Request: rq.r})
	return b, d, err
}

// runDecision runs the decision step for in, timing it, counting its outcome and, unless
// switched off, logging one line per decision.
func (s *Server) runDecision(rq *request, in *DecisionInput) (Decision, error) {
	start := time.Now()
	d, err := s.decider.Decide(rq.r.Context(), in)
	took := time.Since(start)
	outcome := "allow"
	switch {
	case errors.Is(err, errAccessDenied):
		outcome = "deny"
	case err != nil:
		outcome = "error"
	}
	s.metrics.decisions.WithLabelValues(d.DecidedBy, outcome).Inc()
	s.metrics.decisionTime.Observe(took.Seconds())
	if s.cfg.DecisionLog {
		bucket := ""
		if in.Bucket != nil {
			bucket = in.Bucket.Name
		}
		reason := ""
		if err != nil {
			reason = err.Error()
		}
		s.log.Info("decision", "request_id", rq.id, "action", in.Action, "bucket", bucket, "key", in.Key,
			"principal", in.User.Name, "allow", outcome == "allow", "strategy", string(d.Strategy), "decided_by", d.DecidedBy,
			"reason", reason, "eval_time", took)
	}
	return d, err
}

// announce tells the client which strategy guarded its write and who chose it.
func announce(rq *request, d Decision) {
	rq.w.Header().Set("x-weir-concurrency", string(d.Strategy))
	rq.w.Header().Set("x-weir-decided-by", d.DecidedBy)
}

// decideWrite runs the decision step for a write and reads the conditions it carries: the
// decided strategy says which of them the engine will require at commit.
func (s *Server) decideWrite(rq *request, action string) (Decision, engine.Guard, error) {
	_, d, err := s.decide(rq, action)
	if err != nil {
		return d, engine.Guard{}, err
	}
	g, err := writeGuard(rq, d)
	return d, g, err
}
