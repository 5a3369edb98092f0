//go:build tools

// Package tools pins the natscli `nats` CLI the benchmarks build (tests/gopeer/gobuild.py).
// Nothing imports this package; it only holds the version in go.mod and the checksums in go.sum.
package tools

import _ "github.com/nats-io/natscli/nats"
