package gateway

import (
	"errors"
	"net/http"
	"slices"
	"strings"
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

// DecisionInput is what the gateway knows of a request when the decision step runs; the
// pipeline turns it into DESIGN §7's input document once.
type DecisionInput struct {
	Action  string // "s3:PutObject", ...
	User    *User
	Bucket  *engine.Bucket // nil for service-level actions and CreateBucket
	Key     string
	Request *http.Request
	// Object is the object's current metadata when the request loaded it before deciding (GET
	// and HEAD open their snapshot first); ObjectLoaded says it was looked up, and a nil Object
	// then means there is none. Otherwise a decider that needs the object reads it itself.
	Object       *engine.ObjectInfo
	ObjectLoaded bool
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

// decideRead opens the object's snapshot and then decides, so the decision sees the very
// version the read returns without a second lookup. A denial wins over NoSuchKey: a caller
// who may not read learns nothing about which keys exist.
func (s *Server) decideRead(rq *request, action string) (engine.ObjectReader, Decision, error) {
	return s.decideReadOf(rq, action, rq.bucket, rq.key)
}

// decideReadOf is decideRead of another object than the request's own (a copy source).
func (s *Server) decideReadOf(rq *request, action, bucket, key string) (engine.ObjectReader, Decision, error) {
	b, err := s.eng.GetBucket(bucket)
	if err != nil {
		return nil, Decision{}, err
	}
	in := &DecisionInput{Action: action, User: rq.user, Bucket: &b, Key: key, Request: rq.r}
	obj, openErr := s.eng.OpenObject(bucket, key)
	if openErr == nil {
		info := obj.Info()
		in.Object = &info
	}
	in.ObjectLoaded = openErr == nil || errors.Is(openErr, engine.ErrNoSuchKey)
	d, err := s.runDecision(rq, in)
	if err == nil {
		err = openErr
	}
	if err != nil {
		if obj != nil {
			obj.Close()
		}
		return nil, d, err
	}
	return obj, d, nil
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

// announceAll announces the decisions of a request that wrote several keys (DeleteObjects): one
// value when they agree, else each distinct value once, comma-separated, in the order first met.
func announceAll(rq *request, ds []Decision) {
	var strategies, by []string
	for _, d := range ds {
		if !slices.Contains(strategies, string(d.Strategy)) {
			strategies = append(strategies, string(d.Strategy))
		}
		if !slices.Contains(by, d.DecidedBy) {
			by = append(by, d.DecidedBy)
		}
	}
	if len(ds) > 0 {
		rq.w.Header().Set("x-weir-concurrency", strings.Join(strategies, ","))
		rq.w.Header().Set("x-weir-decided-by", strings.Join(by, ","))
	}
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
