//go:build unix

package importer

import (
	"os"
	"syscall"
)

// openReadFlags open a file for reading without waiting for a writer, in
// case a named pipe takes the place of a regular file after its mode was
// checked. O_NONBLOCK has no effect on reading regular files.
const openReadFlags = os.O_RDONLY | syscall.O_NONBLOCK
