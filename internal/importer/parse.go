package importer

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/khub-dev/khub/internal/knowledge"
)

// emptyPageError is the reason a page without text is skipped. Such a page
// holds no knowledge to import, so skipping it is not a failure of the
// import.
type emptyPageError struct{ reason string }

func (e *emptyPageError) Error() string { return e.reason }

// errEmptySectionPage marks a Hugo _index.md that contains only front
// matter. Such pages order a site's menu and contain no knowledge.
var errEmptySectionPage = &emptyPageError{"empty section page"}

// parse turns the bytes of one Markdown file into a normalized, valid
// article. rel is the file's slash-separated path under the import root.
// The error text is the reason for a Skip.
func (s *scanner) parse(rel string, src []byte) (knowledge.Article, error) {
	src = bytes.TrimPrefix(src, utf8BOM)
	if err := checkUTF8(src); err != nil {
		return knowledge.Article{}, err
	}
	fmBytes, body, hasFrontMatter, err := splitFrontMatter(src)
	if err != nil {
		return knowledge.Article{}, err
	}
	var fm frontMatter
	if hasFrontMatter {
		if fm, err = parseFrontMatter(fmBytes); err != nil {
			return knowledge.Article{}, err
		}
	}
	if len(body) > knowledge.MaxBodyLen {
		return knowledge.Article{}, fmt.Errorf("body is %d bytes long; the maximum is %d (1 MiB): split it into smaller files", len(body), knowledge.MaxBodyLen)
	}
	section := isSectionPage(rel)
	if len(bytes.TrimSpace(body)) == 0 {
		switch {
		case section:
			return knowledge.Article{}, errEmptySectionPage
		case hasFrontMatter:
			return knowledge.Article{}, &emptyPageError{"is empty after the front matter: add content or delete the file"}
		default:
			return knowledge.Article{}, &emptyPageError{"is empty: add content or delete the file"}
		}
	}

	a := knowledge.Article{
		Title:      s.title(rel, fm, string(body), section),
		Body:       string(body),
		Collection: s.opts.Collection,
		Class:      knowledge.Class(fm.Class),
		Tags:       fm.Tags,
		Metadata:   fm.Metadata,
		Status:     knowledge.Status(fm.Status),
		Owner:      fm.Owner,
	}
	if a.ReviewEvery, err = knowledge.ParseReviewEvery(fm.ReviewEveryKey, fm.ReviewEvery); err != nil {
		return knowledge.Article{}, fmt.Errorf("front matter %v", err)
	}
	if strings.TrimSpace(fm.Class) == "" {
		a.Class = s.opts.Class
	}
	if !fm.HasTags {
		a.Tags = append([]string(nil), s.opts.Tags...)
	}
	if a.Status == "" {
		a.Status = s.opts.Status
	}
	if fm.ID != "" {
		if err := knowledge.ValidateID("id", fm.ID); err != nil {
			return knowledge.Article{}, fmt.Errorf("front matter %v", err)
		}
		a.ID = fm.ID
	} else {
		a.ID = derivedID(s.opts.Collection, rel)
	}

	a.Normalize()
	if err := a.Validate(); err != nil {
		return knowledge.Article{}, validationReason(err)
	}
	return a, nil
}

// title picks the article title. The front matter title comes first. A
// section page then takes the name of its folder, and any other page its
// first heading or, without one, its file name.
func (s *scanner) title(rel string, fm frontMatter, body string, section bool) string {
	if t := strings.TrimSpace(fm.Title); t != "" {
		return t // validated as given, so that an overlong title is reported
	}
	if section {
		dir := path.Dir(rel)
		if dir == "." {
			return humanizeName(s.rootName)
		}
		return humanizeName(path.Base(dir))
	}
	if t := firstHeading(body); t != "" {
		return truncateTitle(t)
	}
	return truncateTitle(titleFromName(path.Base(rel)))
}

// checkUTF8 rejects invalid UTF-8 and names the line and byte of the first
// invalid sequence.
func checkUTF8(src []byte) error {
	if utf8.Valid(src) {
		return nil
	}
	offset := 0
	for offset < len(src) {
		r, size := utf8.DecodeRune(src[offset:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		offset += size
	}
	line := bytes.Count(src[:offset], []byte("\n")) + 1
	return fmt.Errorf("is not valid UTF-8 (byte 0x%02X on line %d): re-save the file as UTF-8", src[offset], line)
}

// validationReason adds a hint to the knowledge.Article.Validate errors
// whose message does not already say how to fix them.
func validationReason(err error) error {
	var fe *knowledge.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	switch {
	case fe.Field == "body" && strings.Contains(fe.Message, "NUL"):
		return fmt.Errorf("%v: the file looks binary; remove the NUL bytes or the file", err)
	case fe.Field == "title" && fe.Message == "is required":
		return fmt.Errorf("%v: add a title to the front matter or a heading to the file", err)
	case fe.Field == "title" && strings.Contains(fe.Message, "NUL"):
		return fmt.Errorf("%v: remove the NUL bytes from the title in the front matter or the first heading", err)
	case fe.Field == "title" && strings.Contains(fe.Message, "long"):
		return fmt.Errorf("%v: shorten the title in the front matter", err)
	case fe.Field == "tags" || fe.Field == "metadata" || strings.HasPrefix(fe.Field, "metadata"), fe.Field == "owner":
		return fmt.Errorf("front matter %v", err)
	}
	return err
}
