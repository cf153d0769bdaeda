// Command guard is an example weir plugin: an upload guard configured by the manifest. It
// denies, with a reason the client sees, an upload whose body is larger than max_bytes (with a
// limit, multipart uploads, whose size is not known when they begin) or whose Content-Type is in
// deny_content_types, and passes everything else.
//
//	"config": {"max_bytes": 1048576, "deny_content_types": ["application/x-msdownload"]}
//
// A config that does not parse makes the plugin panic in init, so the host refuses to load it
// (the previous plugins keep serving) instead of guarding nothing.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o guard.wasm .
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/weirproject/weir/sdk"
)

type config struct {
	MaxBytes         int64    `json:"max_bytes"`          // 0: no limit
	DenyContentTypes []string `json:"deny_content_types"` // media types, without parameters
}

var (
	raw  []byte // the config conf was parsed from
	conf config
)

// current returns the parsed config, parsing again only if the config bytes changed (they never
// do inside one instance; sdktest changes them between runs).
func current() (config, error) {
	b := sdk.Config()
	if raw != nil && bytes.Equal(b, raw) {
		return conf, nil
	}
	var c config
	if len(bytes.TrimSpace(b)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return config{}, fmt.Errorf("guard: bad config: %v", err)
		}
	}
	raw, conf = append([]byte{}, b...), c
	return c, nil
}

func init() {
	if _, err := current(); err != nil {
		panic(err)
	}
	sdk.Handle(decide)
}

func main() {}

// decide guards every request that writes an object's bytes: s3:PutObject covers PutObject and
// UploadPart (PUT) and CreateMultipartUpload and CompleteMultipartUpload (POST). Checking only
// PUTs would let a multipart upload set a denied Content-Type, or assemble an object of any
// size from small parts.
func decide(r *sdk.Request) sdk.Decision {
	if r.Action() != "s3:PutObject" || r.Key() == "" {
		return sdk.Pass()
	}
	c, err := current()
	if err != nil {
		return sdk.Deny(err.Error())
	}
	ct := r.Header("content-type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	for _, d := range c.DenyContentTypes {
		if ct != "" && strings.EqualFold(ct, d) {
			return sdk.Deny("content type " + ct + " is not accepted")
		}
	}
	if c.MaxBytes > 0 {
		limit := strconv.FormatInt(c.MaxBytes, 10)
		if r.Method() == "POST" {
			// A multipart upload's size is known only when it completes, after every part
			// was accepted: with a size limit, multipart uploads are refused.
			return sdk.Deny("multipart uploads are refused: uploads are limited to " + limit + " bytes in a single PUT")
		}
		if r.Size() > c.MaxBytes || r.Size() < 0 {
			return sdk.Deny("uploads are limited to " + limit + " bytes")
		}
	}
	return sdk.Pass()
}
