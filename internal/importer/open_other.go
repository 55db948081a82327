//go:build !unix

package importer

import "os"

// openReadFlags open a file for reading. Outside Unix, the mode check
// before opening is the only guard against special files.
const openReadFlags = os.O_RDONLY
