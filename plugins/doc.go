// Package plugins will own weir's wazero host: loading, validating, pooling, calling, limiting
// and hot-reloading operators' WebAssembly modules that propose a strategy or deny a request
// before the policy decides (DESIGN §7, issue 5). It never decides on its own: the policy has the
// final word.
package plugins
