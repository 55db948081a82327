// Package importer turns a folder of Markdown files into khub articles and
// uploads them.
//
// Scan reads the files and reports, per file, either an article or the
// reason it was skipped. Upload sends the articles through a Sink with a
// few workers. Neither stops at a bad file: every problem is listed with
// its path, and the rest still import.
package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

// Options configures Scan.
type Options struct {
	// Collection is the collection of every article. It is required and
	// follows the collection rules: lower-case letters, digits, '.', '_'
	// and '-'. Front matter cannot change it.
	Collection string
	// Class is the class of files whose front matter gives none. Empty
	// means knowledge.ClassReference.
	Class knowledge.Class
	// Tags are the tags of files whose front matter has no tags key.
	Tags []string
	// Status is the status of files whose front matter gives none. Empty
	// means knowledge.StatusPublished.
	Status knowledge.Status
}

// Document is one Markdown file turned into an article.
type Document struct {
	// Path is relative to the import root and slash-separated.
	Path    string
	Article knowledge.Article
}

// Skip is a file that was not imported, with the reason.
type Skip struct {
	// Path is relative to the import root and slash-separated.
	Path string
	// Reason describes what is wrong and, where possible, how to fix it.
	Reason string
	// Empty is true for a page with no text, such as a Hugo section page
	// with only front matter. It holds nothing to import, so it is
	// reported but is not a failure.
	Empty bool
}

func (s Skip) String() string { return s.Path + ": " + s.Reason }

// Result is the outcome of Scan.
type Result struct {
	// Documents are the valid articles in walk order (lexical by path).
	Documents []Document
	// Skipped lists the Markdown files, and folders that could not be
	// read, that produced no article.
	Skipped []Skip
	// NotMarkdown counts the files ignored because they are not Markdown
	// (images, OWNERS, LICENSE and the like).
	NotMarkdown int
	// Elapsed is the time Scan took.
	Elapsed time.Duration
}

// maxFrontMatterLen is the room a file may take beyond knowledge.MaxBodyLen
// for its front matter, in bytes. Larger files are skipped unread.
const maxFrontMatterLen = 64 << 10

// Scan walks root and turns every Markdown file (.md or .markdown, in any
// case) into a Document.
//
// Hidden files and folders (name starting with '.') are ignored, and so are
// symbolic links to folders. A symbolic link to a file is read when its
// target lies inside root, and skipped otherwise, so that a link cannot
// upload a file from elsewhere, such as /etc/passwd. Named pipes, devices
// and sockets are skipped without being opened, because opening them can
// block. A Markdown
// file that yields no valid article is listed in Result.Skipped with the
// reason; other files are only counted in Result.NotMarkdown. A second file
// whose id is already taken is skipped with the path of the first.
//
// The body is the file's bytes after the front matter, unchanged except for
// a leading UTF-8 byte order mark and the one blank line that usually
// follows the front matter. Line endings are kept as they are, CRLF
// included.
//
// Scan returns an error only when opts is invalid or root cannot be read.
// root may also name a single Markdown file.
func Scan(root string, opts Options) (*Result, error) {
	return ScanContext(context.Background(), root, opts)
}

// ScanContext is Scan that stops when ctx ends and then returns ctx.Err().
func ScanContext(ctx context.Context, root string, opts Options) (*Result, error) {
	start := time.Now()
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	root, info, err := resolveRoot(root)
	if err != nil {
		return nil, err
	}

	s := &scanner{
		opts:     opts,
		rootName: filepath.Base(root),
		idOwner:  map[string]string{},
		result:   &Result{},
	}
	if !info.IsDir() {
		s.rootName = filepath.Base(filepath.Dir(root))
	}
	if info.IsDir() {
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return s.visit(root, p, d, err)
		})
	} else {
		s.visitFile(root, filepath.Base(root))
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("read import folder: %w", err)
	}
	s.result.Elapsed = time.Since(start)
	return s.result, nil
}

// withDefaults validates opts and fills in the default class and status.
func (o Options) withDefaults() (Options, error) {
	o.Collection = strings.TrimSpace(o.Collection)
	if o.Collection == "" {
		return o, errors.New("import options: a collection is required")
	}
	// Collections and classes follow the same naming rules, and knowledge
	// exports the check only for classes.
	if err := knowledge.ValidateClass("collection", knowledge.Class(o.Collection)); err != nil {
		return o, fmt.Errorf("import options: %w", err)
	}
	o.Class = knowledge.Class(strings.ToLower(strings.TrimSpace(string(o.Class))))
	if o.Class == "" {
		o.Class = knowledge.ClassReference
	}
	if err := knowledge.ValidateClass("class", o.Class); err != nil {
		return o, fmt.Errorf("import options: %w", err)
	}
	if o.Status == "" {
		o.Status = knowledge.StatusPublished
	}
	if !o.Status.Valid() {
		return o, fmt.Errorf("import options: status %q is invalid: use published, deprecated or archived", o.Status)
	}
	return o, nil
}

// resolveRoot follows a symbolic link given as the root, because the user
// named it on purpose, and checks that the root can be read.
func resolveRoot(root string) (string, fs.FileInfo, error) {
	resolved, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", nil, fmt.Errorf("read import folder: %w", err)
	}
	info, err := os.Stat(resolved)
	if err != nil {
		return "", nil, fmt.Errorf("read import folder: %w", err)
	}
	if !info.IsDir() && !isMarkdown(resolved) {
		return "", nil, fmt.Errorf("import root %s is neither a folder nor a Markdown file: pass the folder that contains the Markdown files", root)
	}
	if abs, err := filepath.Abs(resolved); err == nil {
		resolved = abs
	}
	return resolved, info, nil
}

// scanner carries the state of one Scan.
type scanner struct {
	opts     Options
	rootName string            // name of the root folder, the title of a top-level _index.md
	idOwner  map[string]string // article id → path of the file that has it
	result   *Result
}

// visit is the filepath.WalkDir callback.
func (s *scanner) visit(root, p string, d fs.DirEntry, err error) error {
	if p == root {
		return err // an unreadable root ends the scan
	}
	rel := relPath(root, p)
	if err != nil {
		s.skip(rel, fmt.Sprintf("could not be read: %v", unwrapPathError(err)))
		if d != nil && d.IsDir() {
			return fs.SkipDir
		}
		return nil
	}
	if strings.HasPrefix(d.Name(), ".") {
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	}
	if d.IsDir() {
		return nil
	}
	if d.Type()&fs.ModeSymlink != 0 {
		target, err := os.Stat(p)
		switch {
		case err != nil && isMarkdown(p):
			s.skip(rel, fmt.Sprintf("is a symbolic link whose target cannot be read: %v", unwrapPathError(err)))
			return nil
		case err == nil && target.IsDir():
			return nil // not followed, so that a link cannot make a loop
		}
	}
	if !isMarkdown(p) {
		s.result.NotMarkdown++
		return nil
	}
	if d.Type()&fs.ModeSymlink != 0 {
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			s.skip(rel, fmt.Sprintf("is a symbolic link whose target cannot be read: %v", unwrapPathError(err)))
			return nil
		}
		if !inside(root, resolved) {
			s.skip(rel, fmt.Sprintf("is a symbolic link to %s, outside the import folder: copy the file into the folder, or import the folder that holds it", resolved))
			return nil
		}
		// Reading the resolved path keeps a link that is changed after
		// this check from leading outside root.
		p = resolved
	}
	s.visitFile(p, rel)
	return nil
}

// inside reports whether the absolute path p is root or lies under it.
func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && !filepath.IsAbs(rel) && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// visitFile reads and parses one Markdown file.
func (s *scanner) visitFile(p, rel string) {
	src, err := readMarkdown(p)
	if err != nil {
		s.skip(rel, err.Error())
		return
	}
	a, err := s.parse(rel, src)
	var empty *emptyPageError
	if errors.As(err, &empty) {
		s.result.Skipped = append(s.result.Skipped, Skip{Path: rel, Reason: err.Error(), Empty: true})
		return
	}
	if err != nil {
		s.skip(rel, err.Error())
		return
	}
	if first, taken := s.idOwner[a.ID]; taken {
		s.skip(rel, fmt.Sprintf("id %q is already used by %s: give one of the two files another id in its front matter", a.ID, first))
		return
	}
	s.idOwner[a.ID] = rel
	s.result.Documents = append(s.result.Documents, Document{Path: rel, Article: a})
}

func (s *scanner) skip(rel, reason string) {
	s.result.Skipped = append(s.result.Skipped, Skip{Path: rel, Reason: reason})
}

// readMarkdown reads a regular file of at most MaxBodyLen plus
// maxFrontMatterLen bytes. Opening a named pipe blocks until a writer
// opens it, and reading a device may never end, so the mode is checked
// before the file is opened, and again after, without blocking, in case
// the file was replaced in between.
func readMarkdown(p string) ([]byte, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("could not be read: %v", unwrapPathError(err))
	}
	if !info.Mode().IsRegular() {
		return nil, notRegularError(info.Mode())
	}

	f, err := os.OpenFile(p, openReadFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("could not be read: %v", unwrapPathError(err))
	}
	defer f.Close()
	if info, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("could not be read: %v", unwrapPathError(err))
	}
	if !info.Mode().IsRegular() {
		return nil, notRegularError(info.Mode())
	}

	const maxFileLen = knowledge.MaxBodyLen + maxFrontMatterLen
	if info.Size() > maxFileLen {
		return nil, tooLargeError(info.Size())
	}
	src, err := io.ReadAll(io.LimitReader(f, maxFileLen+1))
	if err != nil {
		return nil, fmt.Errorf("could not be read: %v", unwrapPathError(err))
	}
	if len(src) > maxFileLen {
		return nil, tooLargeError(int64(len(src))) // the file grew while being read
	}
	return src, nil
}

// notRegularError is the reason a Markdown name that is no regular file is
// skipped.
func notRegularError(mode fs.FileMode) error {
	kind := "a special file"
	switch {
	case mode.IsDir():
		kind = "a folder"
	case mode&fs.ModeNamedPipe != 0:
		kind = "a named pipe"
	case mode&fs.ModeSocket != 0:
		kind = "a socket"
	case mode&fs.ModeDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("is %s, not a regular file, so it was not opened: only regular files are imported", kind)
}

func tooLargeError(size int64) error {
	return fmt.Errorf("is %d bytes long; an article body may be at most %d bytes (1 MiB): split it into smaller files", size, knowledge.MaxBodyLen)
}

// unwrapPathError drops the path from an *fs.PathError, because the Skip
// names the file already.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// isMarkdown reports whether a file name ends in .md or .markdown, in any
// case.
func isMarkdown(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".md" || ext == ".markdown"
}

// isSectionPage reports whether a slash-separated path names a Hugo
// section page (_index.md).
func isSectionPage(rel string) bool {
	base := path.Base(rel)
	return strings.EqualFold(strings.TrimSuffix(base, path.Ext(base)), "_index")
}

func relPath(root, p string) string {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		// filepath.Rel fails only when one path is absolute and the other
		// relative, and WalkDir passes paths that start with root.
		rel = p
	}
	return filepath.ToSlash(rel)
}
