package api

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/redback-dev/redback/agent"
)

// Limits of the look routes.
const (
	defaultKeysPage = 1000
	defaultDiffList = 1000
	maxDiffList     = 100000
)

// intParam reads query parameter name as an integer in [min, max]; def
// when absent.
func intParam(r *http.Request, name string, def, min, max int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min || n > max {
		return 0, badRequest("%s: want an integer from %d to %d", name, min, max)
	}
	return n, nil
}

// selection reads match=, exclude=, type= (each repeatable) and db=.
func selection(r *http.Request) (agent.Selection, error) {
	q := r.URL.Query()
	sel := agent.Selection{Match: q["match"], Exclude: q["exclude"], Types: q["type"]}
	if q.Has("db") {
		db, err := intParam(r, "db", 0, 0, 1<<20)
		if err != nil {
			return sel, err
		}
		sel.DBs = []int{int(db)}
	}
	return sel, nil
}

// keys answers GET /api/backup/keys/{filename}: one page of the archive's
// keys (?match=&type=&db=&cursor=&limit=).
func (s *Server) keys(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	name, err := pathRef(r)
	if err != nil {
		return err
	}
	sel, err := selection(r)
	if err != nil {
		return err
	}
	cursor, err := intParam(r, "cursor", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", defaultKeysPage, 1, agent.MaxKeysPage)
	if err != nil {
		return err
	}
	res := agent.KeysResult{Keys: []agent.KeyInfo{}}
	o := agent.KeysOptions{ReadOptions: agent.ReadOptions{Identities: s.opt.Identities}, Selection: sel, Cursor: cursor, Limit: int(limit)}
	page, err := t.Service.Keys(r.Context(), name, o, func(k agent.KeyInfo) error {
		res.Keys = append(res.Keys, k)
		return nil
	})
	if err != nil {
		return err
	}
	res.KeysPage, res.Success = page, true
	writeJSON(w, http.StatusOK, res)
	return nil
}

// show answers GET /api/backup/show/{filename}?key=&db=&limit=.
func (s *Server) show(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	name, err := pathRef(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if !q.Has("key") {
		return badRequest("key is required (as `redback keys` shows it: \\xHH for any byte)")
	}
	key, err := agent.UnquoteKey(q.Get("key"))
	if err != nil {
		return badRequest("key: %v", err)
	}
	db, err := intParam(r, "db", 0, 0, 1<<20)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 100, 1, agent.MaxKeysPage)
	if err != nil {
		return err
	}
	res, err := t.Service.Show(r.Context(), name, key, int(db), agent.ShowOptions{ReadOptions: agent.ReadOptions{Identities: s.opt.Identities}, Limit: int(limit)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// diff answers GET /api/backup/diff?a=&b= (or &live=true), with
// &match= and &limit= (the differences listed; the counts cover all).
func (s *Server) diff(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	a, err := checkRef(q.Get("a"))
	if err != nil {
		return fmt.Errorf("a: %w", err)
	}
	live := q.Get("live") == "true" || q.Get("live") == "1"
	b := agent.DiffLive
	switch {
	case live && q.Has("b"):
		return badRequest("give b or live=true, not both")
	case !live:
		if b, err = checkRef(q.Get("b")); err != nil {
			return fmt.Errorf("b (or live=true): %w", err)
		}
	}
	limit, err := intParam(r, "limit", defaultDiffList, 1, maxDiffList)
	if err != nil {
		return err
	}
	tol, err := intParam(r, "ttl_tolerance_ms", 2000, 0, 1<<40)
	if err != nil {
		return err
	}
	o := agent.DiffOptions{ReadOptions: agent.ReadOptions{Identities: s.opt.Identities}, Selection: agent.Selection{Match: q["match"]},
		Limit: int(limit), TTLTolerance: time.Duration(tol) * time.Millisecond}
	var diffs []agent.Difference
	res, err := t.Service.Diff(r.Context(), a, b, o, func(d agent.Difference) error {
		diffs = append(diffs, d)
		return nil
	})
	if err != nil {
		return err
	}
	res.Differences = diffs
	if res.Differences == nil {
		res.Differences = []agent.Difference{}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// upload answers POST /api/backup/upload?filename=NAME: the body is the
// archive's bytes, streamed into storage and read whole before it is
// listed (MaxUploadBytes at most; each read must make progress within
// BodyTimeout).
func (s *Server) upload(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	name, err := checkName(r.URL.Query().Get("filename"))
	if err != nil {
		return err
	}
	if r.ContentLength > s.opt.MaxUploadBytes {
		return fmt.Errorf("%w: the archive is larger than api.max_upload_bytes (%d)", errTooLarge, s.opt.MaxUploadBytes)
	}
	rc, _ := r.Context().Value(bodyDeadlineKey{}).(*http.ResponseController)
	body := &progressReader{r: http.MaxBytesReader(w, r.Body, s.opt.MaxUploadBytes), rc: rc, idle: s.opt.BodyTimeout}
	res, err := t.Service.Upload(r.Context(), name, body, s.opt.Identities)
	bodyRead(r)
	if err != nil {
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return fmt.Errorf("%w: the archive is larger than api.max_upload_bytes (%d); nothing was stored", errTooLarge, s.opt.MaxUploadBytes)
		case errors.As(err, &ne) && ne.Timeout():
			return fmt.Errorf("%w: the upload stalled; nothing was stored", errTimeout)
		}
		return err
	}
	s.audit.Info("archive uploaded", "file", name, "size", res.Size, "sha256", res.SHA256, "remote", s.clientIP(r))
	writeJSON(w, http.StatusCreated, res)
	return nil
}

// progressReader moves the body's read deadline on before every read: an
// upload may take long, but must not stall.
type progressReader struct {
	r    interface{ Read([]byte) (int, error) }
	rc   *http.ResponseController
	idle time.Duration
}

func (p *progressReader) Read(b []byte) (int, error) {
	if p.rc != nil {
		_ = p.rc.SetReadDeadline(time.Now().Add(p.idle))
	}
	return p.r.Read(b)
}
