// Package lint holds no code, only the test that keeps the module clean
// under gofmt, go vet and staticcheck (the version go.mod pins as a tool,
// configured by staticcheck.conf at the module root). It is a test so that
// CI's one command, go test ./..., runs it; go test -short skips it.
//
//	go test ./internal/lint             # all three, listing every finding
//	go tool staticcheck ./...           # staticcheck alone
package lint
