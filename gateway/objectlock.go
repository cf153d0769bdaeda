package gateway

import (
	"encoding/xml"
	"net/http"

	"github.com/weirproject/weir/engine"
)

// Object Lock: a bucket's configuration (engine.Bucket.ObjectLock). A bucket gets it at
// creation (x-amz-bucket-object-lock-enabled: true) or, while its versioning is enabled, by
// PutObjectLockConfiguration; it keeps it, and versioning, for good.

type defaultRetention struct {
	Mode  string `xml:"Mode,omitempty"`
	Days  *int   `xml:"Days,omitempty"`
	Years *int   `xml:"Years,omitempty"`
}

type objectLockRule struct {
	DefaultRetention *defaultRetention `xml:"DefaultRetention"`
}

type objectLockConfiguration struct {
	XMLName           xml.Name        `xml:"ObjectLockConfiguration"`
	NS                string          `xml:"xmlns,attr,omitempty"`
	ObjectLockEnabled string          `xml:"ObjectLockEnabled,omitempty"`
	Rule              *objectLockRule `xml:"Rule,omitempty"`
}

const objectLockEnabled = "Enabled"

func (s *Server) getObjectLockConfiguration(rq *request) error {
	b, _, err := s.decide(rq, "s3:GetBucketObjectLockConfiguration")
	if err != nil {
		return err
	}
	if b.ObjectLock == nil {
		return errorf(errNoSuchObjectLockConfig, "bucket %s has no Object Lock configuration", rq.bucket)
	}
	out := objectLockConfiguration{NS: s3NS, ObjectLockEnabled: objectLockEnabled}
	if c := b.ObjectLock; c.DefaultMode != "" {
		r := &defaultRetention{Mode: c.DefaultMode}
		if c.DefaultYears != 0 {
			r.Years = &c.DefaultYears
		} else {
			r.Days = &c.DefaultDays
		}
		out.Rule = &objectLockRule{DefaultRetention: r}
	}
	return writeXML(rq, http.StatusOK, out)
}

func (s *Server) putObjectLockConfiguration(rq *request) error {
	if _, _, err := s.decide(rq, "s3:PutBucketObjectLockConfiguration"); err != nil {
		return err
	}
	// The token is how S3 once let support enable Object Lock on an existing bucket; weir
	// enables it on any bucket with versioning enabled, and has no tokens to check.
	if rq.r.Header.Get("x-amz-bucket-object-lock-token") != "" {
		return errorf(errNotImplemented, "x-amz-bucket-object-lock-token is not implemented: weir enables Object Lock on a bucket whose versioning is enabled, without a token")
	}
	var c objectLockConfiguration
	if err := readXML(rq, &c, false); err != nil {
		return err
	}
	if c.ObjectLockEnabled != objectLockEnabled {
		return errorf(errMalformedXML, "ObjectLockEnabled must be Enabled, got %q: Object Lock cannot be turned off", c.ObjectLockEnabled)
	}
	var cfg engine.ObjectLockConfig
	if c.Rule != nil {
		r := c.Rule.DefaultRetention
		if r == nil || r.Mode == "" || (r.Days == nil) == (r.Years == nil) {
			return errorf(errMalformedXML, "a Rule holds a DefaultRetention with a Mode and either Days or Years")
		}
		cfg.DefaultMode = r.Mode
		if r.Days != nil {
			if *r.Days <= 0 {
				return errorf(errInvalidArgument, "the default retention period must be a positive number of days, got %d", *r.Days)
			}
			cfg.DefaultDays = *r.Days
		} else {
			if *r.Years <= 0 {
				return errorf(errInvalidArgument, "the default retention period must be a positive number of years, got %d", *r.Years)
			}
			cfg.DefaultYears = *r.Years
		}
	}
	if _, err := s.eng.SetObjectLockConfig(rq.r.Context(), rq.bucket, cfg); err != nil {
		return err
	}
	rq.w.WriteHeader(http.StatusOK)
	return nil
}
