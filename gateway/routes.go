package gateway

import (
	"net/http"
	"sort"
	"strings"
)

// scope is the part of the S3 namespace a request addresses.
type scope uint8

const (
	anyScope     scope = iota // every request (the sub-resources weir refuses everywhere)
	serviceScope              // no bucket: GET / lists the buckets
	bucketScope               // a bucket, no key
	objectScope               // an object
)

// route is one row of S3's dispatch table.
type route struct {
	scope  scope
	method string // "" matches every method
	// sub is the query key the request must carry ("key=value": with that value); "" matches
	// any query.
	sub string
	// copySource: the request must carry x-amz-copy-source (UploadPartCopy, CopyObject).
	copySource bool
	// action is the S3 operation's name, used by metrics, logs and the decision step.
	action string
	// handle serves the request; nil refuses it with action (actionMethodNotAllowed or
	// actionNotImplemented).
	handle func(*Server, *request) error
}

// The actions of the rows that refuse a request.
const (
	actionMethodNotAllowed = "MethodNotAllowed"
	actionNotImplemented   = "NotImplemented"
)

// matches reports whether rq fits the row: same scope, method and sub-resource.
func (rt *route) matches(sc scope, rq *request) bool {
	if rt.scope != anyScope && rt.scope != sc {
		return false
	}
	if rt.method != "" && rt.method != rq.r.Method {
		return false
	}
	if rt.copySource && rq.r.Header.Get("x-amz-copy-source") == "" {
		return false
	}
	if rt.sub == "" {
		return true
	}
	k, v, hasValue := strings.Cut(rt.sub, "=")
	if hasValue {
		return rq.query.Get(k) == v
	}
	return rq.query.Has(k)
}

// refuse is a row that answers every other method on a sub-resource with MethodNotAllowed,
// where falling through to the scope's plain operation would do something else than asked.
func refuse(sc scope, sub string) route {
	return route{scope: sc, sub: sub, action: actionMethodNotAllowed}
}

// routes is S3's dispatch table: the first row that matches a request serves it; a request no
// row matches is answered MethodNotAllowed. Order matters within a scope: a row with a
// sub-resource comes before the scope's plain operation for the same method.
var routes = buildRoutes()

func buildRoutes() []route {
	rs := []route{
		{scope: anyScope, sub: "torrent", action: actionNotImplemented},
		{scope: anyScope, sub: "select", action: actionNotImplemented},
		{scope: anyScope, sub: "restore", action: actionNotImplemented},
		{scope: anyScope, sub: "metadataTable", action: actionNotImplemented},

		{serviceScope, http.MethodGet, "", false, "ListBuckets", (*Server).listBuckets},

		{bucketScope, http.MethodGet, "acl", false, "GetBucketAcl", (*Server).getBucketACL},
		{bucketScope, http.MethodPut, "acl", false, "PutBucketAcl", func(s *Server, rq *request) error { return s.putACL("s3:PutBucketAcl", false)(rq) }},
		refuse(bucketScope, "acl"),
		{bucketScope, http.MethodGet, "versions", false, "ListObjectVersions", (*Server).listObjectVersions},
		refuse(bucketScope, "versions"),
		{bucketScope, http.MethodGet, "versioning", false, "GetBucketVersioning", (*Server).getBucketVersioning},
		{bucketScope, http.MethodPut, "versioning", false, "PutBucketVersioning", (*Server).putBucketVersioning},
		refuse(bucketScope, "versioning"),
	}
	rs = append(rs, bucketConfigRoutes()...)
	rs = append(rs, []route{
		{bucketScope, http.MethodPut, "tagging", false, "PutBucketTagging", (*Server).putBucketTagging},
		{bucketScope, http.MethodPut, "concurrency", false, "PutBucketConcurrency", (*Server).putBucketConcurrency},
		{bucketScope, http.MethodPut, "lease", false, "LeaseBucket", (*Server).leaseBucket},
		{bucketScope, http.MethodPut, "", false, "CreateBucket", (*Server).createBucket},
		{bucketScope, http.MethodGet, "location", false, "GetBucketLocation", (*Server).getBucketLocation},
		{bucketScope, http.MethodGet, "tagging", false, "GetBucketTagging", (*Server).getBucketTagging},
		{bucketScope, http.MethodGet, "concurrency", false, "GetBucketConcurrency", (*Server).getBucketConcurrency},
		{bucketScope, http.MethodGet, "uploads", false, "ListMultipartUploads", (*Server).listMultipartUploads},
		{bucketScope, http.MethodGet, "list-type=2", false, "ListObjectsV2", (*Server).listObjectsV2},
		{bucketScope, http.MethodGet, "", false, "ListObjects", (*Server).listObjectsV1},
		{bucketScope, http.MethodHead, "", false, "HeadBucket", (*Server).headBucket},
		{bucketScope, http.MethodDelete, "tagging", false, "DeleteBucketTagging", (*Server).deleteBucketTagging},
		{bucketScope, http.MethodDelete, "", false, "DeleteBucket", (*Server).deleteBucket},
		{bucketScope, http.MethodPost, "delete", false, "DeleteObjects", (*Server).deleteObjects},

		{objectScope, http.MethodGet, "acl", false, "GetObjectAcl", (*Server).getObjectACL},
		{objectScope, http.MethodPut, "acl", false, "PutObjectAcl", func(s *Server, rq *request) error { return s.putACL("s3:PutObjectAcl", true)(rq) }},
		refuse(objectScope, "acl"),
		{objectScope, http.MethodGet, "legal-hold", false, "GetObjectLegalHold", func(s *Server, rq *request) error { return s.getObjectLockState("s3:GetObjectLegalHold")(rq) }},
		{objectScope, http.MethodPut, "legal-hold", false, "PutObjectLegalHold", (*Server).refuseObjectLock},
		refuse(objectScope, "legal-hold"),
		{objectScope, http.MethodGet, "retention", false, "GetObjectRetention", func(s *Server, rq *request) error { return s.getObjectLockState("s3:GetObjectRetention")(rq) }},
		{objectScope, http.MethodPut, "retention", false, "PutObjectRetention", (*Server).refuseObjectLock},
		refuse(objectScope, "retention"),
		{objectScope, http.MethodGet, "attributes", false, "GetObjectAttributes", (*Server).getObjectAttributes},
		refuse(objectScope, "attributes"),
		{objectScope, http.MethodGet, "tagging", false, "GetObjectTagging", (*Server).getObjectTagging},
		{objectScope, http.MethodPut, "tagging", false, "PutObjectTagging", (*Server).putObjectTagging},
		{objectScope, http.MethodDelete, "tagging", false, "DeleteObjectTagging", (*Server).deleteObjectTagging},
		refuse(objectScope, "tagging"),
		{objectScope, http.MethodPut, "lease", false, "LeaseObject", (*Server).leaseObject},
		{objectScope, http.MethodPut, "uploadId", true, "UploadPartCopy", (*Server).uploadPartCopy},
		{objectScope, http.MethodPut, "uploadId", false, "UploadPart", (*Server).uploadPart},
		{objectScope, http.MethodPut, "", true, "CopyObject", (*Server).copyObject},
		{objectScope, http.MethodPut, "", false, "PutObject", (*Server).putObject},
		{objectScope, http.MethodGet, "uploadId", false, "ListParts", (*Server).listParts},
		{objectScope, http.MethodGet, "", false, "GetObject", (*Server).getObject},
		{objectScope, http.MethodHead, "", false, "HeadObject", (*Server).headObject},
		{objectScope, http.MethodDelete, "uploadId", false, "AbortMultipartUpload", (*Server).abortMultipartUpload},
		{objectScope, http.MethodDelete, "", false, "DeleteObject", (*Server).deleteObject},
		{objectScope, http.MethodPost, "uploads", false, "CreateMultipartUpload", (*Server).createMultipartUpload},
		{objectScope, http.MethodPost, "uploadId", false, "CompleteMultipartUpload", (*Server).completeMultipartUpload},
	}...)
	return rs
}

// bucketConfigRoutes are the rows of the bucket configurations weir does not implement
// (config.go), in a fixed order so that a request naming two of them always gets the same one.
func bucketConfigRoutes() []route {
	subs := make([]string, 0, len(bucketConfigs))
	for sub := range bucketConfigs {
		subs = append(subs, sub)
	}
	sort.Strings(subs)
	var rs []route
	for _, sub := range subs {
		c := bucketConfigs[sub]
		rs = append(rs,
			route{bucketScope, http.MethodGet, sub, false, "GetBucket" + c.name, func(s *Server, rq *request) error { return s.getBucketConfig(sub, c)(rq) }},
			route{bucketScope, http.MethodPut, sub, false, "PutBucket" + c.name, func(s *Server, rq *request) error { return s.putBucketConfig(sub, c)(rq) }})
		if deletableConfigs[sub] {
			rs = append(rs, route{bucketScope, http.MethodDelete, sub, false, "DeleteBucket" + c.name, func(s *Server, rq *request) error { return s.deleteBucketConfig(c)(rq) }})
		}
		rs = append(rs, refuse(bucketScope, sub))
	}
	return rs
}

// findRoute returns the row that serves rq, or nil when none does.
func findRoute(rq *request) *route {
	sc := objectScope
	switch {
	case rq.bucket == "":
		sc = serviceScope
	case rq.key == "":
		sc = bucketScope
	}
	for i := range routes {
		if routes[i].matches(sc, rq) {
			return &routes[i]
		}
	}
	return nil
}
