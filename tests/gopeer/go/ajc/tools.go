//go:build tools

// Package tools pins the Go asyncjobs `ajc` CLI the suite builds (tests/gopeer/gobuild.py).
// Nothing imports this package; it only holds the version in go.mod and the checksums in go.sum.
package tools

import _ "github.com/choria-io/asyncjobs/ajc"
