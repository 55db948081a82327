// Package examples embeds the project's example knowledge base, which
// khub demo imports.
package examples

import "embed"

// KB is the example knowledge base: Markdown articles with YAML front
// matter under the folder "kb".
//
//go:embed kb
var KB embed.FS
