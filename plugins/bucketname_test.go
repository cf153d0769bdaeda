package plugins

import (
	"testing"

	"github.com/weirproject/weir/engine"
)

// The manifest check warns of exactly the names the engine refuses to create.
func TestInvalidBucketNameAgreesWithTheEngine(t *testing.T) {
	for _, name := range []string{
		"media", "my.bucket-1", "ab", "abc", "a234567890123456789012345678901234567890123456789012345678901234",
		"Media", "under_score", "-lead", "trail-", ".dot", "a..b", "a.-b", "a-.b", "10.0.0.1", "xn--abc",
		"sthree-x", "x-s3alias", "x--ol-s3", "*", "", "ünï",
	} {
		want := engine.ValidBucketName(name) == nil
		if got := invalidBucketName(name) == ""; got != want {
			t.Errorf("%q: valid = %v, the engine says %v", name, got, want)
		}
	}
}
