package gateway

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"

	"github.com/weirproject/weir/engine"
	"github.com/weirproject/weir/gateway/internal/checksum"
	"github.com/weirproject/weir/gateway/internal/decide"
	"github.com/weirproject/weir/gateway/internal/sigv4"
)

// Errors the gateway itself raises. Like the engine's, they are sentinels wrapped with context;
// s3ErrorTable below is the one place that gives each its S3 code and HTTP status.
var (
	errBucketOwnedByOther        = errors.New("the requested bucket name is not available; the bucket namespace is shared by all users, choose another name")
	errBucketOwnedByYou          = errors.New("your previous request to create the named bucket succeeded and you already own it")
	errMalformedXML              = errors.New("the XML you provided was not well-formed or did not validate against our published schema")
	errXMLTooLarge               = errors.New("your request was too big")
	errMethodNotAllowed          = errors.New("the specified method is not allowed against this resource")
	errNotImplemented            = errors.New("a header or query you provided implies functionality that is not implemented")
	errInvalidArgument           = errors.New("invalid argument")
	errInvalidRequest            = errors.New("invalid request")
	errInvalidRange              = errors.New("the requested range is not satisfiable")
	errMissingContentLength      = errors.New("you must provide the Content-Length HTTP header")
	errEntityTooLarge            = errors.New("your proposed upload exceeds the maximum allowed object size")
	errNoSuchTagSet              = errors.New("the TagSet does not exist")
	errInvalidTag                = errors.New("invalid tag")
	errNotModified               = errors.New("not modified")
	errInvalidCopySource         = errors.New("invalid copy source")
	errIllegalLocationConstraint = errors.New("illegal location constraint")
)

type s3Error struct {
	code   string
	status int
}

// s3ErrorTable maps every error weir reports to its S3 code and HTTP status. The first entry
// whose sentinel matches (errors.Is) wins; anything unmatched is a 500 InternalError.
var s3ErrorTable = []struct {
	err error
	s3Error
}{
	// engine
	{engine.ErrNoSuchBucket, s3Error{"NoSuchBucket", http.StatusNotFound}},
	{engine.ErrNoSuchKey, s3Error{"NoSuchKey", http.StatusNotFound}},
	{engine.ErrBucketNotEmpty, s3Error{"BucketNotEmpty", http.StatusConflict}},
	{engine.ErrInvalidBucketName, s3Error{"InvalidBucketName", http.StatusBadRequest}},
	{engine.ErrKeyTooLong, s3Error{"KeyTooLongError", http.StatusBadRequest}},
	{engine.ErrInvalidKey, s3Error{"InvalidArgument", http.StatusBadRequest}},
	{engine.ErrMetadataTooLarge, s3Error{"MetadataTooLarge", http.StatusBadRequest}},
	{engine.ErrBadDigest, s3Error{"BadDigest", http.StatusBadRequest}},
	{engine.ErrIncompleteBody, s3Error{"IncompleteBody", http.StatusBadRequest}},
	{engine.ErrNoSuchUpload, s3Error{"NoSuchUpload", http.StatusNotFound}},
	{engine.ErrInvalidPart, s3Error{"InvalidPart", http.StatusBadRequest}},
	{engine.ErrInvalidPartOrder, s3Error{"InvalidPartOrder", http.StatusBadRequest}},
	{engine.ErrEntityTooSmall, s3Error{"EntityTooSmall", http.StatusBadRequest}},
	{engine.ErrInvalidPartNumber, s3Error{"InvalidArgument", http.StatusBadRequest}},
	{engine.ErrPreconditionFailed, s3Error{"PreconditionFailed", http.StatusPreconditionFailed}},
	{engine.ErrPreconditionRequired, s3Error{"PreconditionRequired", http.StatusPreconditionRequired}},
	{engine.ErrInvalidStrategy, s3Error{"InvalidArgument", http.StatusBadRequest}},
	{engine.ErrBucketExists, s3Error{"BucketAlreadyExists", http.StatusConflict}},
	{engine.ErrLeaseAlreadyPresent, s3Error{"LeaseAlreadyPresent", http.StatusConflict}},
	{engine.ErrLeaseIDMismatchWithLeaseOperation, s3Error{"LeaseIdMismatchWithLeaseOperation", http.StatusConflict}},
	{engine.ErrLeaseNotPresentWithLeaseOperation, s3Error{"LeaseNotPresentWithLeaseOperation", http.StatusConflict}},
	{engine.ErrLeaseIsBrokenAndCannotBeRenewed, s3Error{"LeaseIsBrokenAndCannotBeRenewed", http.StatusConflict}},
	{engine.ErrLeaseIsBreakingAndCannotBeAcquired, s3Error{"LeaseIsBreakingAndCannotBeAcquired", http.StatusConflict}},
	{engine.ErrLeaseIsBreakingAndCannotBeChanged, s3Error{"LeaseIsBreakingAndCannotBeChanged", http.StatusConflict}},
	{engine.ErrLeaseIDMissing, s3Error{"LeaseIdMissing", http.StatusPreconditionFailed}},
	{engine.ErrLeaseIDMismatchWithObjectOperation, s3Error{"LeaseIdMismatchWithBlobOperation", http.StatusPreconditionFailed}},
	{engine.ErrLeaseNotPresentWithObjectOperation, s3Error{"LeaseNotPresentWithBlobOperation", http.StatusPreconditionFailed}},
	{engine.ErrLeaseIDMismatchWithBucketOperation, s3Error{"LeaseIdMismatchWithContainerOperation", http.StatusPreconditionFailed}},
	{engine.ErrLeaseNotPresentWithBucketOperation, s3Error{"LeaseNotPresentWithContainerOperation", http.StatusPreconditionFailed}},
	{engine.ErrInvalidLeaseRequest, s3Error{"InvalidArgument", http.StatusBadRequest}},
	{engine.ErrClosed, s3Error{"ServiceUnavailable", http.StatusServiceUnavailable}},
	{engine.ErrUnavailable, s3Error{"ServiceUnavailable", http.StatusServiceUnavailable}},
	// authentication and payload
	{sigv4.ErrMissingAuth, s3Error{"AccessDenied", http.StatusForbidden}},
	{sigv4.ErrPresignExpired, s3Error{"AccessDenied", http.StatusForbidden}},
	{sigv4.ErrHeadersNotSigned, s3Error{"AccessDenied", http.StatusForbidden}},
	{sigv4.ErrInvalidAccessKeyID, s3Error{"InvalidAccessKeyId", http.StatusForbidden}},
	{sigv4.ErrSignatureDoesNotMatch, s3Error{"SignatureDoesNotMatch", http.StatusForbidden}},
	{sigv4.ErrRequestTimeTooSkewed, s3Error{"RequestTimeTooSkewed", http.StatusForbidden}},
	{sigv4.ErrAuthorizationMalformed, s3Error{"AuthorizationHeaderMalformed", http.StatusBadRequest}},
	{sigv4.ErrContentSHA256Mismatch, s3Error{"XAmzContentSHA256Mismatch", http.StatusBadRequest}},
	{sigv4.ErrUnsupportedAlgorithm, s3Error{"NotImplemented", http.StatusNotImplemented}},
	{sigv4.ErrMalformedChunk, s3Error{"IncompleteBody", http.StatusBadRequest}},
	{sigv4.ErrIncompleteBody, s3Error{"IncompleteBody", http.StatusBadRequest}},
	{sigv4.ErrMissingContentLength, s3Error{"MissingContentLength", http.StatusLengthRequired}},
	{sigv4.ErrMalformedTrailer, s3Error{"MalformedTrailerError", http.StatusBadRequest}},
	{checksum.ErrBadDigest, s3Error{"BadDigest", http.StatusBadRequest}},
	{checksum.ErrInvalidDigest, s3Error{"InvalidDigest", http.StatusBadRequest}},
	{checksum.ErrInvalidRequest, s3Error{"InvalidRequest", http.StatusBadRequest}},
	{checksum.ErrMalformedTrailer, s3Error{"MalformedTrailerError", http.StatusBadRequest}},
	// gateway
	{decide.ErrDenied, s3Error{"AccessDenied", http.StatusForbidden}},
	{errBucketOwnedByOther, s3Error{"BucketAlreadyExists", http.StatusConflict}},
	{errBucketOwnedByYou, s3Error{"BucketAlreadyOwnedByYou", http.StatusConflict}},
	{errMalformedXML, s3Error{"MalformedXML", http.StatusBadRequest}},
	{errXMLTooLarge, s3Error{"MaxMessageLengthExceeded", http.StatusBadRequest}},
	{errMethodNotAllowed, s3Error{"MethodNotAllowed", http.StatusMethodNotAllowed}},
	{errNotImplemented, s3Error{"NotImplemented", http.StatusNotImplemented}},
	{errInvalidArgument, s3Error{"InvalidArgument", http.StatusBadRequest}},
	{errInvalidRequest, s3Error{"InvalidRequest", http.StatusBadRequest}},
	{errInvalidRange, s3Error{"InvalidRange", http.StatusRequestedRangeNotSatisfiable}},
	{errMissingContentLength, s3Error{"MissingContentLength", http.StatusLengthRequired}},
	{errEntityTooLarge, s3Error{"EntityTooLarge", http.StatusBadRequest}},
	{errNoSuchTagSet, s3Error{"NoSuchTagSet", http.StatusNotFound}},
	{errInvalidTag, s3Error{"InvalidTag", http.StatusBadRequest}},
	{errNotModified, s3Error{"NotModified", http.StatusNotModified}},
	{errInvalidCopySource, s3Error{"InvalidArgument", http.StatusBadRequest}},
	{errNoSuchBucketPolicy, s3Error{"NoSuchBucketPolicy", http.StatusNotFound}},
	{errNoSuchCORSConfiguration, s3Error{"NoSuchCORSConfiguration", http.StatusNotFound}},
	{errCORSForbidden, s3Error{"AccessForbidden", http.StatusForbidden}},
	{errPolicyViolation, s3Error{"AccessDenied", http.StatusForbidden}},
	{errInvalidPolicyDocument, s3Error{"InvalidPolicyDocument", http.StatusBadRequest}},
	{errMalformedPOST, s3Error{"MalformedPOSTRequest", http.StatusBadRequest}},
	{errPostFieldsTooLarge, s3Error{"MaxPostPreDataLengthExceeded", http.StatusBadRequest}},
	{errPostTooSmall, s3Error{"EntityTooSmall", http.StatusBadRequest}},
	{errNoSuchLifecycleConfiguration, s3Error{"NoSuchLifecycleConfiguration", http.StatusNotFound}},
	{errNoSuchEncryptionConfig, s3Error{"ServerSideEncryptionConfigurationNotFoundError", http.StatusNotFound}},
	{errNoSuchWebsiteConfiguration, s3Error{"NoSuchWebsiteConfiguration", http.StatusNotFound}},
	{errNoSuchReplicationConfig, s3Error{"ReplicationConfigurationNotFoundError", http.StatusNotFound}},
	{errNoSuchPublicAccessBlock, s3Error{"NoSuchPublicAccessBlockConfiguration", http.StatusNotFound}},
	{errNoSuchObjectLockConfig, s3Error{"ObjectLockConfigurationNotFoundError", http.StatusNotFound}},
	{errNoSuchObjectLockOnObject, s3Error{"NoSuchObjectLockConfiguration", http.StatusNotFound}},
	{errNoSuchConfiguration, s3Error{"NoSuchConfiguration", http.StatusNotFound}},
	{errBadRequest, s3Error{"BadRequest", http.StatusBadRequest}},
	{errIllegalLocationConstraint, s3Error{"IllegalLocationConstraintException", http.StatusBadRequest}},
	{errInvalidStorageClass, s3Error{"InvalidStorageClass", http.StatusBadRequest}},
	{decide.ErrPolicy, s3Error{"InternalError", http.StatusInternalServerError}},
	{decide.ErrPluginFailed, s3Error{"PluginFailed", http.StatusServiceUnavailable}},
	{errRequestTimeout, s3Error{"RequestTimeout", http.StatusBadRequest}},
	{errTooManyBuckets, s3Error{"TooManyBuckets", http.StatusBadRequest}},
}

var internalError = s3Error{"InternalError", http.StatusInternalServerError}

// lookupS3Error returns the S3 code and status for err.
func lookupS3Error(err error) (s3Error, bool) {
	for _, e := range s3ErrorTable {
		if errors.Is(err, e.err) {
			return e.s3Error, true
		}
	}
	return internalError, false
}

// errorf wraps a gateway sentinel with a message a person understands.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

type errorResponse struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
}
