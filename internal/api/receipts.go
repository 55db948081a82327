package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// maxBehindCount caps the count of articles behind in an integration's
// applied figures, so that reading an integration stays cheap when its
// tool is far behind.
const maxBehindCount = 10000

// receiptRoutes registers the receipt calls: tools confirm with their pull
// token, and the admin reads the progress per article.
func (s *Server) receiptRoutes() {
	s.mux.Handle("POST /v1/receipts", s.requireToken(s.postReceipts))
	s.mux.Handle("GET /v1/integrations/{id}/applied", s.requireAdmin(s.appliedArticle))
}

// postReceipts records that an integration's tool applied article
// versions. Every receipt must name a version that exists and that the
// integration can see, as must the article's current version, or the
// request records nothing and fails with 404, as a read of that version
// would.
func (s *Server) postReceipts(w http.ResponseWriter, r *http.Request) {
	var req client.ReceiptRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := s.receiptIntegration(r, req.IntegrationID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	keys, fields, err := receiptKeys(&req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.checkReceiptScope(r, in, keys, fields); err != nil {
		s.writeError(w, r, err)
		return
	}

	at := s.now()
	if err := s.hub.Store.RecordReceipts(r.Context(), in.ID, keys, at); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = &apiError{Status: http.StatusNotFound, Code: "not_found",
				Message: fmt.Sprintf("integration %s was deleted while the receipts were recorded", in.ID)}
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.ReceiptResult{IntegrationID: in.ID, Recorded: len(keys), ReceivedAt: at})
}

// checkReceiptScope returns a 404 error naming the field of the first key
// whose version, or whose article's current version, is missing or
// outside the integration's scope.
func (s *Server) checkReceiptScope(r *http.Request, in *store.IntegrationState, keys []store.VersionKey, fields []string) error {
	infos, err := s.hub.Store.DescribeVersions(r.Context(), keys)
	if err != nil {
		return err
	}
	for i, k := range keys {
		info, ok := infos[k]
		if !ok || !in.Scope.Matches(&info.Version) || !in.Scope.Matches(&info.Current) {
			return &apiError{Status: http.StatusNotFound, Code: "not_found", Field: fields[i],
				Message: fmt.Sprintf("article %q version %d not found in the scope of integration %s: send receipts only for versions the tool received from khub", k.ArticleID, k.Version, in.ID)}
		}
	}
	return nil
}

// receiptIntegration returns the integration that receipts are for: the
// pull token's own, or the one the admin names in integration_id.
func (s *Server) receiptIntegration(r *http.Request, id string) (*store.IntegrationState, error) {
	p := principalFrom(r.Context())
	if !p.admin {
		if id != "" && id != p.integration.ID {
			return nil, badRequest("integration_id", "integration_id %q is not the integration of this pull token, %s: leave it out, because a pull token sends receipts for its own integration", id, p.integration.ID)
		}
		return p.integration, nil
	}
	if id == "" {
		return nil, badRequest("integration_id", "integration_id is required with the admin token: name the integration whose tool applied the versions, or send the integration's pull token")
	}
	if err := knowledge.ValidateID("integration_id", id); err != nil {
		return nil, err
	}
	st, err := s.hub.Store.GetIntegration(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &apiError{Status: http.StatusNotFound, Code: "not_found", Field: "integration_id",
			Message: fmt.Sprintf("integration %q not found: list the integrations with GET /v1/integrations to find its id", id)}
	}
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// receiptKeys checks the shape of a receipt request and returns its
// receipts with the field that names each one in errors.
func receiptKeys(req *client.ReceiptRequest) ([]store.VersionKey, []string, error) {
	single := req.ArticleID != "" || req.Version != 0
	switch {
	case single && req.Receipts != nil:
		return nil, nil, badRequest("receipts", "the body has both receipts and article_id or version: send one receipt as article_id and version, or several in receipts")
	case !single && req.Receipts == nil:
		return nil, nil, badRequest("article_id", "article_id is required: send article_id and version, or a list in receipts")
	case single:
		key, err := receiptKey("", client.Receipt{ArticleID: req.ArticleID, Version: req.Version})
		if err != nil {
			return nil, nil, err
		}
		return []store.VersionKey{key}, []string{"article_id"}, nil
	case len(req.Receipts) == 0:
		return nil, nil, badRequest("receipts", "receipts is empty: send at least one receipt")
	case len(req.Receipts) > client.MaxReceipts:
		return nil, nil, badRequest("receipts", "receipts has %d entries, but the maximum is %d: send them in several requests", len(req.Receipts), client.MaxReceipts)
	}
	keys := make([]store.VersionKey, len(req.Receipts))
	fields := make([]string, len(req.Receipts))
	for i, rc := range req.Receipts {
		prefix := "receipts[" + strconv.Itoa(i) + "]."
		key, err := receiptKey(prefix, rc)
		if err != nil {
			return nil, nil, err
		}
		keys[i], fields[i] = key, prefix+"article_id"
	}
	return keys, fields, nil
}

// receiptKey validates one receipt and returns its version key. prefix
// starts its field names in errors.
func receiptKey(prefix string, rc client.Receipt) (store.VersionKey, error) {
	if err := knowledge.ValidateID(prefix+"article_id", rc.ArticleID); err != nil {
		return store.VersionKey{}, err
	}
	if rc.Version == 0 {
		return store.VersionKey{}, badRequest(prefix+"version", "%sversion is missing or 0: send the version number, from 1 up, of the article the tool applied", prefix)
	}
	if rc.Version < 1 {
		return store.VersionKey{}, badRequest(prefix+"version", "%sversion %d is invalid: send the version number, from 1 up, of the article the tool applied", prefix, rc.Version)
	}
	return store.VersionKey{ArticleID: rc.ArticleID, Version: rc.Version}, nil
}

// appliedView returns the applied figures of an integration.
func (s *Server) appliedView(r *http.Request, st *store.IntegrationState) (client.Applied, error) {
	sum, err := s.hub.Store.SummarizeReceipts(r.Context(), &st.Integration, maxBehindCount)
	if err != nil {
		return client.Applied{}, err
	}
	return client.Applied{
		Articles:      sum.Articles,
		Behind:        sum.Behind,
		BehindCapped:  sum.BehindCapped,
		LastReceiptAt: timePtr(sum.LastReceiptAt),
	}, nil
}

// appliedArticle serves GET /v1/integrations/{id}/applied?article=ID: the
// current, delivered and applied versions of one article for an
// integration.
func (s *Server) appliedArticle(w http.ResponseWriter, r *http.Request) {
	st, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}

	q := r.URL.Query()
	for _, key := range queryKeys(q) {
		values := q[key]
		if key != "article" {
			s.writeError(w, r, badRequest(key, "unknown query parameter %q: use article", key))
			return
		}
		if len(values) > 1 {
			s.writeError(w, r, badRequest(key, "article is given %d times: give it once", len(values)))
			return
		}
	}
	id := q.Get("article")
	if id == "" {
		s.writeError(w, r, badRequest("article", "article is required: give the id of the article, as in ?article=ID"))
		return
	}
	if err := knowledge.ValidateID("article", id); err != nil {
		s.writeError(w, r, err)
		return
	}

	cur, err := s.hub.Store.GetArticle(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		err = &apiError{Status: http.StatusNotFound, Code: "not_found", Field: "article", Message: fmt.Sprintf("article %q not found", id)}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	progress, err := s.hub.Store.ArticleProgress(r.Context(), &st, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	inScope := st.Scope.Matches(&cur)
	writeJSON(w, http.StatusOK, client.AppliedArticle{
		IntegrationID:    st.ID,
		ArticleID:        id,
		InScope:          inScope,
		CurrentVersion:   cur.Version,
		DeliveredVersion: max(progress.Pushed, progress.Pulled),
		AppliedVersion:   progress.Applied.Version,
		AppliedAt:        timePtr(progress.Applied.AppliedAt),
		Behind:           inScope && progress.Applied.Version < cur.Version,
	})
}
