package gateway

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/weirproject/weir/engine"
	"github.com/weirproject/weir/policies"
)

// TestPolicyInputObjectReads: input.object comes from what the request already loaded, and the
// store is read for it only when the policy looks at it. The decider here has no engine at all,
// so any store read would panic.
func TestPolicyInputObjectReads(t *testing.T) {
	ctx := context.Background()
	compile := func(src string) *policies.Policy {
		p, err := policies.Compile(ctx, map[string]string{"p.rego": "package weir\n" + src})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	in := func(loaded *engine.ObjectInfo) *DecisionInput {
		return &DecisionInput{Action: "s3:GetObject", User: &User{Name: "u", AccessKey: "U"},
			Bucket: &engine.Bucket{Name: "b", Owner: "U"}, Key: "k", Request: httptest.NewRequest("GET", "/b/k", nil),
			Object: loaded, ObjectLoaded: true}
	}
	reader := &pipeline{policy: compile(`allow if input.object.generation == 9`)}
	if _, err := reader.Decide(ctx, in(&engine.ObjectInfo{Generation: 9, Size: 3})); err != nil {
		t.Fatalf("the loaded object did not reach the policy: %v", err)
	}
	if _, err := reader.Decide(ctx, in(nil)); err == nil {
		t.Fatal("a missing object (loaded, none there) was seen as generation 9")
	}
	blind := &pipeline{policy: compile(`allow if input.principal.name == "u"`)}
	notLoaded := in(nil)
	notLoaded.ObjectLoaded = false
	if _, err := blind.Decide(ctx, notLoaded); err != nil {
		t.Fatalf("a policy that never reads input.object: %v", err)
	}
}
