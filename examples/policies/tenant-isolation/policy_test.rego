package weir_test

import data.weir

alice := {"name": "alice", "access_key": "A", "groups": ["team-a"], "root": false}

test_member_writes_own_tenant if weir.allow with input as {"action": "s3:PutObject", "principal": alice, "bucket": {"name": "team-a-logs"}}

test_other_tenant_denied if {
	not weir.allow with input as {"action": "s3:GetObject", "principal": alice, "bucket": {"name": "team-b-logs"}}
	weir.reason == "bucket team-b-logs belongs to a tenant alice is not in" with input as {"action": "s3:GetObject", "principal": alice, "bucket": {"name": "team-b-logs"}}
}

test_shared_readable if weir.allow with input as {"action": "s3:GetObject", "principal": alice, "bucket": {"name": "shared"}}

test_shared_not_writable if not weir.allow with input as {"action": "s3:PutObject", "principal": alice, "bucket": {"name": "shared"}}
