# Tenant isolation by group: a bucket named "<group>-..." belongs to that group's members; the
# bucket "shared" is readable by everyone and writable by root only.
package weir

default allow := false

reads := {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"}

member if {
	some g in input.principal.groups
	startswith(input.bucket.name, concat("", [g, "-"]))
}

allow if input.principal.root

allow if input.action in {"s3:CreateBucket", "s3:ListAllMyBuckets"}

allow if {
	input.bucket.name != "shared"
	member
}

allow if {
	input.bucket.name == "shared"
	input.action in reads
}

reason := sprintf("bucket %s belongs to a tenant %s is not in", [input.bucket.name, input.principal.name]) if {
	not allow
	input.bucket.name != "shared"
}

reason := "the shared bucket is read-only" if {
	not allow
	input.bucket.name == "shared"
}
