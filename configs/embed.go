// Package configs holds the embedded default configuration and voice prompts, so that
// `go run ./cmd/hotlined` works on a fresh machine with no files around it.
package configs

import "embed"

// DefaultName is the name of the embedded default configuration in FS.
const DefaultName = "hotline.yaml"

// PromptsDir is the directory of the embedded prompt set in FS.
const PromptsDir = "prompts"

// FS holds hotline.yaml and the prompt set (prompts/zh, prompts/en, prompts/moh.wav).
//
//go:embed hotline.yaml prompts/*.wav prompts/zh/*.wav prompts/en/*.wav
var FS embed.FS
