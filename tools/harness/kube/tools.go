//go:build tools

// Keeps kube-apiserver's packages in go.mod/go.sum; the binary is built with
// `go build k8s.io/kubernetes/cmd/kube-apiserver` (see build.sh).
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"
