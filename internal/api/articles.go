package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

func (s *Server) createArticle(w http.ResponseWriter, r *http.Request) {
	var in client.Article
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := fromClientArticle(in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if a.ID == "" {
		a.ID = newArticleID()
	}
	res, err := s.hub.SaveArticle(r.Context(), a, store.SaveOptions{CreateOnly: true})
	if errors.Is(err, store.ErrConflict) {
		err = &apiError{Status: http.StatusConflict, Code: "conflict", Field: "id", Message: fmt.Sprintf("article %q already exists: update it with PUT /v1/articles/%s", a.ID, a.ID)}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/articles/"+res.Article.ID)
	writeArticle(w, http.StatusCreated, &res.Article, client.OutcomeCreated)
}

// putArticle creates or updates an article. An If-Match header makes the
// write conditional on the current version.
func (s *Server) putArticle(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in client.Article
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.ID != "" && in.ID != id {
		s.writeError(w, r, badRequest("id", "id %q in the body differs from %q in the path: leave it out or make them equal", in.ID, id))
		return
	}
	in.ID = id
	opts, err := s.ifMatch(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if opts.CreateOnly, err = ifNoneMatchCreate(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := fromClientArticle(in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.hub.SaveArticle(r.Context(), a, opts)
	if err != nil {
		s.writeError(w, r, s.preconditionError(r, id, opts, err))
		return
	}
	status, outcome := http.StatusOK, client.OutcomeUnchanged
	switch {
	case res.Created:
		status, outcome = http.StatusCreated, client.OutcomeCreated
	case res.Changed:
		outcome = client.OutcomeUpdated
	}
	writeArticle(w, status, &res.Article, outcome)
}

// archiveArticle archives an article: a new version with status archived.
// Archived articles leave search but stay readable by id.
func (s *Server) archiveArticle(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	opts, err := s.ifMatch(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.hub.ArchiveArticle(r.Context(), id, opts.IfVersion)
	if err != nil {
		s.writeError(w, r, s.preconditionError(r, id, opts, err))
		return
	}
	outcome := client.OutcomeUpdated
	if !res.Changed {
		outcome = client.OutcomeUnchanged
	}
	writeArticle(w, http.StatusOK, &res.Article, outcome)
}

// preconditionError turns a failed If-Match or If-None-Match into 412 with
// the current version, so the client can tell which version to re-read.
func (s *Server) preconditionError(r *http.Request, id string, opts store.SaveOptions, err error) error {
	conditional := opts.IfVersion != 0 || opts.MustExist || opts.CreateOnly
	if !conditional || !(errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound)) {
		return err
	}
	cur, gerr := s.hub.Store.GetArticle(r.Context(), id)
	if opts.CreateOnly && gerr == nil {
		return &apiError{Status: http.StatusPreconditionFailed, Code: "precondition_failed", Field: "If-None-Match",
			Message: fmt.Sprintf("If-None-Match: * allows only creation, and article %q exists at version %d (ETag %s): drop the header to update it, or send If-Match with that ETag", id, cur.Version, etag(cur.Version))}
	}
	msg := fmt.Sprintf("article %q does not exist, so If-Match cannot match: drop If-Match to create it", id)
	if gerr == nil {
		msg = fmt.Sprintf("If-Match does not match: article %q is at version %d (ETag %s): read it again and retry", id, cur.Version, etag(cur.Version))
	}
	return &apiError{Status: http.StatusPreconditionFailed, Code: "precondition_failed", Field: "If-Match", Message: msg}
}

func (s *Server) getArticle(w http.ResponseWriter, r *http.Request) {
	if s.articleNotModified(w, r) {
		return
	}
	a, ok := s.readableArticle(w, r, s.hub.Store.GetArticle)
	if !ok {
		return
	}
	// The review state in the body changes without a new version when the
	// review falls due, so the tag, the dates and max-age follow it.
	now := s.now()
	lastModified := a.ReviewDue()
	if !a.ReviewOverdue(now) {
		var err error
		if lastModified, err = s.lastModified(r, &a); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	maxAge := capUntilReviewDue(cacheMaxAge(r), &a, now)
	writeCached(w, r, articleETag(&a, now), lastModified, maxAge, currentArticle(&a, now))
}

// articleNotModified writes the response to a GET of an article with
// If-None-Match when the article without its body decides it, and reports
// whether it did. That is 304 when a tag matches, and the 404 of an
// article that is missing or outside the caller's scope. If-None-Match
// overrides If-Modified-Since, so no other header matters. When no tag
// matches, the caller reads the whole article for the 200. That read may
// find a newer version, and the tag it sends is computed from that read.
func (s *Server) articleNotModified(w http.ResponseWriter, r *http.Request) bool {
	if headerList(r, "If-None-Match") == "" {
		return false
	}
	a, ok := s.readableArticle(w, r, s.hub.Store.GetArticleMeta)
	if !ok {
		return true
	}
	now := s.now()
	return writeNotModified(w, r, articleETag(&a, now), time.Time{}, capUntilReviewDue(cacheMaxAge(r), &a, now))
}

// lastModified returns the Last-Modified time of the article's current
// version, or zero when it cannot validate r. HTTP dates have one-second
// precision, so a client that has the previous version, written in the
// same second, would send the same If-Modified-Since date and get a false
// 304. When r sends that date and the previous version shares its second,
// the response goes without Last-Modified and If-Modified-Since is ignored.
//
// NOTE: a cache that sends the Date of a response instead of its
// Last-Modified, as RFC 9111 allows, can still get a false 304 when it
// read the previous version in the second of the next write. ETags have no
// such gap.
func (s *Server) lastModified(r *http.Request, a *knowledge.Article) (time.Time, error) {
	since, ok := ifModifiedSince(r)
	if !ok || a.Version == 1 || headerList(r, "If-None-Match") != "" || !since.Equal(a.UpdatedAt.Truncate(time.Second)) {
		return a.UpdatedAt, nil
	}
	prev, err := s.hub.Store.GetArticleVersion(r.Context(), a.ID, a.Version-1)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return a.UpdatedAt, nil
	case err != nil:
		return time.Time{}, err
	case prev.UpdatedAt.Truncate(time.Second).Equal(since):
		return time.Time{}, nil
	}
	return a.UpdatedAt, nil
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request) {
	a, ok := s.readableArticle(w, r, s.hub.Store.GetArticleMeta)
	if !ok {
		return
	}
	versions, err := s.hub.Store.ListVersions(r.Context(), a.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// An article can move into the caller's scope, by a change of class for
	// example, so its older versions may lie outside and stay hidden.
	p := principalFrom(r.Context())
	out := client.VersionList{Versions: make([]client.Article, 0, len(versions))}
	for i := range versions {
		if p.canSee(&versions[i]) {
			out.Versions = append(out.Versions, toClientArticle(&versions[i]))
		}
	}
	// The list read may include versions newer than a.Version, so the tag
	// and Last-Modified come from the newest version in it.
	newest := &a
	if n := len(versions); n > 0 && versions[n-1].Version > a.Version {
		newest = &versions[n-1]
	}
	lastModified, err := s.lastModified(r, newest)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeCached(w, r, resultETag(r, newest.Version, ""), lastModified, cacheMaxAge(r), out)
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	a, ok := s.readableArticle(w, r, s.hub.Store.GetArticleMeta)
	if !ok {
		return
	}
	n, err := strconv.ParseInt(r.PathValue("version"), 10, 64)
	if err != nil || n < 1 {
		s.writeError(w, r, badRequest("version", "version %q is invalid: use a positive integer", r.PathValue("version")))
		return
	}
	v, err := s.hub.Store.GetArticleVersion(r.Context(), a.ID, n)
	if err == nil && !principalFrom(r.Context()).canSee(&v) {
		// A version outside the caller's scope gets the same 404 as a missing one.
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		err = &apiError{Status: http.StatusNotFound, Code: "not_found", Field: "version",
			Message: fmt.Sprintf("version %d of article %q not found: list the versions with GET /v1/articles/%s/versions", n, a.ID, a.ID)}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// A stored version never changes, so its Last-Modified needs none of
	// the same-second care of the current version's.
	writeCached(w, r, etag(v.Version), v.UpdatedAt, cacheMaxAge(r), toClientArticle(&v))
}

// readableArticle loads the current version with get, GetArticle or
// GetArticleMeta of the store, and hides articles outside the caller's
// scope behind the same 404 as missing ones.
func (s *Server) readableArticle(w http.ResponseWriter, r *http.Request, get func(context.Context, string) (knowledge.Article, error)) (knowledge.Article, bool) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return knowledge.Article{}, false
	}
	a, err := get(r.Context(), id)
	p := principalFrom(r.Context())
	if err == nil && !p.canSee(&a) {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		err = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("article %q not found", id)}
	}
	if err != nil {
		s.writeError(w, r, err)
		return knowledge.Article{}, false
	}
	return a, true
}

// newArticleID returns an id for an article created without one.
func newArticleID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "a_" + hex.EncodeToString(b)
}

func pathID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if err := knowledge.ValidateID("id", id); err != nil {
		return "", err
	}
	return id, nil
}

func writeArticle(w http.ResponseWriter, status int, a *knowledge.Article, outcome string) {
	now := time.Now().UTC()
	w.Header().Set("ETag", articleETag(a, now))
	if outcome != "" {
		w.Header().Set("Khub-Change", outcome)
	}
	writeJSON(w, status, currentArticle(a, now))
}

// etag is the strong validator of one article version's representation:
// versions are immutable, so the version number identifies the bytes.
// articleETag extends it for the review state of the current version.
func etag(version int64) string { return `"v` + strconv.FormatInt(version, 10) + `"` }

// parseETag returns the version in a strong ETag written by etag or
// articleETag, so "v3" and "v3-overdue" both name version 3. Only the
// canonical spelling parses, so "v01" and "v+1" name no version.
func parseETag(tag string) (int64, bool) {
	inner, ok := strings.CutPrefix(tag, `"v`)
	if !ok || !strings.HasSuffix(inner, `"`) {
		return 0, false
	}
	digits := strings.TrimSuffix(strings.TrimSuffix(inner, `"`), overdueETagSuffix)
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil && n > 0 && strconv.FormatInt(n, 10) == digits
}

// entityTags splits the value of an If-Match or If-None-Match header into
// its entity tags, weak ones with their W/ prefix (RFC 9110, sections
// 8.8.3 and 5.6.1). Empty list elements are skipped. ok is false when the
// value is not a list of entity tags.
func entityTags(h string) (tags []string, ok bool) {
	for {
		h = strings.TrimLeft(h, " \t,")
		if h == "" {
			return tags, len(tags) > 0
		}
		rest, weak := strings.CutPrefix(h, "W/")
		if !strings.HasPrefix(rest, `"`) {
			return nil, false
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return nil, false
		}
		tag := rest[:end+2]
		if weak {
			tag = "W/" + tag
		}
		tags = append(tags, tag)
		h = strings.TrimLeft(rest[end+2:], " \t")
		if h != "" && h[0] != ',' {
			return nil, false
		}
	}
}

// headerList joins every line of a list-valued header, because a client
// may send the list on several lines (RFC 9110, section 5.3).
func headerList(r *http.Request, name string) string {
	return strings.TrimSpace(strings.Join(r.Header.Values(name), ", "))
}

// ifMatch turns an If-Match header into save preconditions. "*" requires
// that the article exists. A list of entity tags matches when any of them
// is a strong tag of the current version, so weak tags never match (RFC
// 9110, section 13.1.1). The review state in a tag does not count, because
// a write conflicts only with another version.
//
// The store checks one version atomically. For a list, that version is the
// current one when the list names it, and otherwise the first one listed,
// which then fails with 412.
func (s *Server) ifMatch(r *http.Request, id string) (store.SaveOptions, error) {
	h := headerList(r, "If-Match")
	if h == "" {
		return store.SaveOptions{}, nil
	}
	if h == "*" {
		return store.SaveOptions{MustExist: true}, nil
	}
	tags, ok := entityTags(h)
	var versions []int64
	for _, tag := range tags {
		if n, ok := parseETag(tag); ok {
			versions = append(versions, n)
		}
	}
	if !ok || len(versions) == 0 {
		return store.SaveOptions{}, &apiError{Status: http.StatusPreconditionFailed, Code: "precondition_failed", Field: "If-Match",
			Message: fmt.Sprintf("If-Match %q names no ETag of this API: send the ETag header of a GET, such as \"v3\" in quotes, or a comma-separated list of them", h)}
	}
	opts := store.SaveOptions{IfVersion: versions[0], MustExist: true}
	if len(versions) > 1 {
		cur, err := s.hub.Store.GetArticle(r.Context(), id)
		switch {
		case err == nil && slices.Contains(versions, cur.Version):
			opts.IfVersion = cur.Version
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return store.SaveOptions{}, err
		}
	}
	return opts, nil
}

// ifNoneMatchCreate reports whether a PUT carries If-None-Match: *, which
// makes it create-only (RFC 9110, section 13.1.2): it fails with 412 when
// the article exists. Entity tags in the header are rejected, because a
// PUT that must not overwrite one version but may overwrite others is
// better written with If-Match.
func ifNoneMatchCreate(r *http.Request) (bool, error) {
	h := headerList(r, "If-None-Match")
	switch h {
	case "":
		return false, nil
	case "*":
		return true, nil
	}
	return false, badRequest("If-None-Match", "If-None-Match %q is not supported on PUT: send * to create the article only if it does not exist, or If-Match with an ETag to update a known version", h)
}

// fromClientArticle converts a request body to an article. Its only error
// is a review_every that is not a duration, because Validate checks the
// rest.
func fromClientArticle(in client.Article) (knowledge.Article, error) {
	reviewEvery, err := knowledge.ParseReviewEvery("review_every", in.ReviewEvery)
	if err != nil {
		return knowledge.Article{}, err
	}
	return knowledge.Article{
		ID:          in.ID,
		Title:       in.Title,
		Body:        in.Body,
		Collection:  in.Collection,
		Class:       knowledge.Class(in.Class),
		Tags:        in.Tags,
		Metadata:    in.Metadata,
		Status:      knowledge.Status(in.Status),
		ReviewEvery: reviewEvery,
		Owner:       in.Owner,
	}, nil
}

func toClientArticle(a *knowledge.Article) client.Article {
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	out := client.Article{
		ID:         a.ID,
		Title:      a.Title,
		Body:       a.Body,
		Collection: a.Collection,
		Class:      string(a.Class),
		Tags:       tags,
		Metadata:   a.Metadata,
		Status:     string(a.Status),
		Version:    a.Version,
		CreatedAt:  a.CreatedAt,
		UpdatedAt:  a.UpdatedAt,
		Owner:      a.Owner,
	}
	if a.ReviewEvery > 0 {
		out.ReviewEvery = knowledge.FormatDuration(a.ReviewEvery)
	}
	return out
}
