// Package policies will own weir's OPA integration: loading, hot-reloading and evaluating the
// operators' Rego (package weir) and the built-in default policy, prepared once and evaluated per
// request (DESIGN §7, issue 4).
//
// Until it lands, the gateway's built-in decision step applies the default policy's rule in Go:
// root may do anything, other users act on buckets they own, the bucket's strategy stands.
package policies
