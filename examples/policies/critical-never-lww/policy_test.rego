package weir_test

import data.weir

test_critical_lww_becomes_etag if weir.strategy == "etag" with input as {"principal": {"root": true}, "bucket": {"strategy": "last-writer-wins", "tags": {"critical": "true"}}}

test_critical_lease_stays if not weir.strategy with input as {"principal": {"root": true}, "bucket": {"strategy": "lease", "tags": {"critical": "true"}}}

test_not_critical_untouched if not weir.strategy with input as {"principal": {"root": true}, "bucket": {"strategy": "last-writer-wins", "tags": {}}}
